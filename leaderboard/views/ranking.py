"""The ranking page: the filtered table sorted by Δ, the forest plot and Δ against ratio."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.views.charts import delta_by_ratio, forest
from cxrbench.leaderboard.views.filters import filtered
from cxrbench.leaderboard.views.text import plain

SHOWN = {"generator": "generator", "verdict": "verdict", "delta": "Δ", "ci": "95% CI", "p_holm": "p Holm",
         "mde": "MDE (80%)", "ratio": "ratio", "reference_score": "reference score", "arm_score": "arm score",
         "p_t_greater": "p one-sided t (secondary)", "verified": "verified", "role": "role", "date": "date",
         "revision": "revision"}
CI_KINDS = {"primary: seeds and test patients combined (the verdict's)": "ci",
            "secondary: t over seeds only (training noise)": "t_ci",
            "secondary: bootstrap over test patients only (test-set noise)": "boot_ci"}


def ranking_table(rows: pd.DataFrame, ci: str) -> pd.DataFrame:
    """Plain cells (text is never rendered as HTML by st.dataframe)."""
    shown = rows.sort_values("delta", ascending=False).assign(
        ci=[f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in zip(rows[f"{ci}_low"], rows[f"{ci}_high"], strict=True)])
    return shown[list(SHOWN)].rename(columns=SHOWN).reset_index(drop=True)


def render(entries, table: pd.DataFrame) -> None:
    st.title("cxrbench leaderboard")
    st.caption("Does a generator's synthetic data make the downstream model better? Δ is the paired difference to "
               "the reference arm over the same seeds and regime. The verdict (helps, hurts, no detectable "
               "difference) comes from the primary analysis: one interval for training and test-set noise together, "
               "a two-sided test Holm-corrected over the generator's protocol family; MDE is the |Δ| that test "
               "detects with 80% power.")
    rows = filtered(table)
    if rows.empty:
        st.info("No submission matches these filters.")
        return
    task = rows.iloc[0]
    st.subheader(f"{plain(task['suite'])} / {plain(task['task'])} / {plain(task['regime'])} "
                 f"({int(task['n_real'])} real images): Δ {plain(task['metric'])} vs {plain(task['reference'])}")
    ci = CI_KINDS[st.radio("Confidence interval", list(CI_KINDS), horizontal=True, key="ci")]
    st.dataframe(ranking_table(rows, ci), hide_index=True, width="stretch")
    st.markdown("**Forest plot** (Δ and 95% CI; right of the dashed line helps)")
    st.altair_chart(forest(rows, ci), width="stretch")
    st.markdown("**Δ against the synthetic ratio**")
    st.altair_chart(delta_by_ratio(rows, ci), width="stretch")
