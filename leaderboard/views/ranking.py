"""The ranking page: the filtered table sorted by Δ, the forest plot and Δ against ratio."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.views.charts import delta_by_ratio, forest
from cxrbench.leaderboard.views.filters import filtered
from cxrbench.leaderboard.views.text import plain
from cxrbench.verification import LEVELS

SHOWN = {"rank": "rank", "generator": "generator", "verdict": "verdict", "delta": "Δ", "ci": "95% CI",
         "p_holm": "p Holm",
         "mde": "MDE (80%)", "ratio": "ratio", "reference_score": "reference score", "arm_score": "arm score",
         "p_t_greater": "p one-sided t (secondary)", "verification": "verification", "role": "role", "date": "date",
         "revision": "revision"}
CI_KINDS = {"primary: seeds and test patients combined (the verdict's)": "ci",
            "secondary: t over seeds only (training noise)": "t_ci",
            "secondary: bootstrap over test patients only (test-set noise)": "boot_ci"}


def ranking_table(rows: pd.DataFrame, ci: str) -> pd.DataFrame:
    """Recomputed entries ranked by Δ, then the unranked ones (spot-checked, self-reported) below them; plain
    cells (text is never rendered as HTML by st.dataframe)."""
    order = rows["verification"].map(LEVELS.index)
    shown = rows.assign(order=order).sort_values(["order", "delta"], ascending=[True, False])
    shown = shown.assign(
        ci=[f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in zip(shown[f"{ci}_low"], shown[f"{ci}_high"], strict=True)],
        rank=[str(i + 1) if ranked else "-" for i, ranked in enumerate(shown["ranked"])])
    return shown[list(SHOWN)].rename(columns=SHOWN).reset_index(drop=True)


def render(entries, table: pd.DataFrame) -> None:
    st.title("cxrbench leaderboard")
    st.caption("Does a generator's synthetic data make the downstream model better? Δ is the paired difference to "
               "the reference arm over the same seeds and regime. Only entries CI recomputed are ranked; "
               "spot-checked and self-reported ones follow, unranked (see Protocol and statistics). The verdict "
               "(helps, hurts, no detectable difference) comes from the primary analysis: one interval for training "
               "and test-set noise together, a two-sided test Holm-corrected over the generator's protocol family; "
               "MDE is the |Δ| that test detects with 80% power.")
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
