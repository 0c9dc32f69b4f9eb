"""The ranking page: the filtered table ranked with ties shown as ties, the forest plot and Δ against ratio."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.ranks import UNRANKED, rank_labels
from cxrbench.leaderboard.views import permalink
from cxrbench.leaderboard.views.charts import delta_by_ratio, forest
from cxrbench.leaderboard.views.column_groups import any_efficiency, efficiency_text
from cxrbench.leaderboard.views.download import table_with_download
from cxrbench.leaderboard.views.filters import filtered
from cxrbench.leaderboard.views.text import interval, not_a_formula, plain
from cxrbench.verification import LEVELS

SHOWN = {"rank": "rank", "generator": "generator", "verdict": "verdict", "delta": "Δ", "ci": "95% CI",
         "p_holm": "p Holm",
         "mde": "MDE (80%)", "ratio": "ratio", "reference_score": "reference score", "arm_score": "arm score",
         "p_t_greater": "p one-sided t (secondary)", "verification": "verification", "role": "role", "date": "date",
         "revision": "revision"}
EFFICIENCY = "transfer efficiency [95% CI]"
CI_KINDS = {"ci": "primary: seeds and test patients combined (the verdict's)",
            "t_ci": "secondary: t over seeds only (training noise)",
            "boot_ci": "secondary: bootstrap over test patients only (test-set noise)"}


def _rank_order(label: str) -> float:
    return float("inf") if label == UNRANKED else float(label.lstrip("="))


def ranking_table(rows: pd.DataFrame, ci: str, efficiency: bool = False) -> pd.DataFrame:
    """Recomputed entries ranked by the overlap of their primary intervals (ties share a rank, "=2"), best first and
    by Δ within a rank, then the unranked ones (spot-checked, self-reported) below them. `ci` picks the interval
    shown; `efficiency` adds the transfer efficiency. Plain cells (st.dataframe renders no HTML); the card's free
    text cannot start a spreadsheet formula in the CSV."""
    ranks = rank_labels(rows["ci_low"].tolist(), rows["ci_high"].tolist(), rows["ranked"].tolist())
    shown = rows.assign(rank=ranks, level=rows["verification"].map(LEVELS.index),
                        rank_order=[_rank_order(label) for label in ranks])
    shown = shown.sort_values(["level", "rank_order", "delta"], ascending=[True, True, False])
    shown = shown.assign(ci=[interval(lo, hi) for lo, hi in zip(shown[f"{ci}_low"], shown[f"{ci}_high"], strict=True)],
                         revision=shown["revision"].map(not_a_formula))
    columns = dict(SHOWN)
    if efficiency:
        shown = shown.assign(efficiency=shown.apply(efficiency_text, axis=1))
        columns["efficiency"] = EFFICIENCY
    return shown[list(columns)].rename(columns=columns).reset_index(drop=True)


def render(entries, table: pd.DataFrame) -> None:
    st.title("cxrbench leaderboard")
    st.caption("Does a generator's synthetic data make the downstream model better? Δ is the paired difference to "
               "the reference arm over the same seeds and regime. Only entries CI recomputed are ranked; "
               "spot-checked and self-reported ones follow, unranked (see Protocol and statistics). The verdict "
               "(helps, hurts, no detectable difference) comes from the primary analysis: one interval for training "
               "and test-set noise together, a two-sided test Holm-corrected over the generator's protocol family; "
               "MDE is the |Δ| that test detects with 80% power. Rank: 1 + the number of entries whose primary "
               "interval lies wholly above this one's, so entries whose intervals overlap share a rank (=2).")
    rows = filtered(table)
    if rows.empty:
        st.info("No submission matches these filters.")
        return
    task = rows.iloc[0]
    st.subheader(f"{plain(task['suite'])} / {plain(task['task'])} / {plain(task['regime'])} "
                 f"({int(task['n_real'])} real images): Δ {plain(task['metric'])} vs {plain(task['reference'])}")
    ci = permalink.choice(st.radio, "Confidence interval", list(CI_KINDS), key="ci", horizontal=True,
                          format_func=CI_KINDS.get)
    name = "_".join(str(task[column]) for column in ("suite", "task", "regime", "reference"))
    table_with_download(ranking_table(rows, ci, any_efficiency(rows)), f"cxrbench_ranking_{name}.csv",
                        key="csv_ranking", pinned=["rank", "generator"])
    st.markdown("**Forest plot** (Δ and 95% CI; right of the dashed line helps)")
    st.altair_chart(forest(rows, ci), width="stretch")
    st.markdown("**Δ against the synthetic ratio**")
    st.altair_chart(delta_by_ratio(rows, ci), width="stretch")
