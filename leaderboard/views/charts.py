"""Altair charts: a forest plot of Δ with CI whiskers, and Δ against the synthetic ratio."""

from __future__ import annotations

import altair as alt
import pandas as pd


def _label(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(arm=rows["generator"] + " @ " + rows["ratio"].map("{:g}".format))


def forest(rows: pd.DataFrame, ci: str) -> alt.LayerChart:
    """Δ per generator and ratio (point) with its 95% CI (whisker); the zero line is 'no effect'."""
    data = _label(rows)
    y = alt.Y("arm:N", sort=alt.EncodingSortField("delta", order="descending"), title=None)
    whiskers = alt.Chart(data).mark_rule(strokeWidth=2).encode(
        x=alt.X(f"{ci}_low:Q", title="Δ vs reference (95% CI)"), x2=f"{ci}_high:Q", y=y, color="verification:N")
    points = alt.Chart(data).mark_point(filled=True, size=80).encode(
        x="delta:Q", y=y, color="verification:N",
        tooltip=["generator", "ratio", "delta", f"{ci}_low", f"{ci}_high", "p_holm", "verdict"])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4], color="grey").encode(x="x:Q")
    return (whiskers + points + zero).properties(height=60 + 45 * len(data))


def delta_by_ratio(rows: pd.DataFrame, ci: str) -> alt.LayerChart:
    """Δ against synthetic images per real image, one line per generator, CI as error bars."""
    base = alt.Chart(rows).encode(x=alt.X("ratio:Q", title="synthetic per real image", axis=alt.Axis(format="~g")),
                                  color="generator:N")
    line = base.mark_line(point=True).encode(y=alt.Y("delta:Q", title="Δ vs reference (95% CI)"))
    bars = base.mark_errorbar().encode(y=alt.Y(f"{ci}_low:Q", title="Δ vs reference (95% CI)"), y2=f"{ci}_high:Q")
    return (line + bars).properties(height=260)
