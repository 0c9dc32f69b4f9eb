"""The sidebar filters of the ranking page: suite, task, regime, conditioning, reference, ranked only (each in the
page's permalink)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.views import permalink
from cxrbench.protocol import BASELINE


def filtered(table: pd.DataFrame) -> pd.DataFrame:
    """The rows the sidebar's choices keep (one suite, task and regime at a time; the reference real_only by
    default)."""
    if table.empty:
        return table
    sidebar = st.sidebar
    suite = permalink.choice(sidebar.selectbox, "Suite", sorted(table["suite"].unique()), key="suite")
    rows = table[table["suite"] == suite]
    task = permalink.choice(sidebar.selectbox, "Task", sorted(rows["task"].unique()), key="task")
    rows = rows[rows["task"] == task]
    regimes = list(dict.fromkeys(rows.sort_values("n_real")["regime"]))  # smallest (scarce) first
    regime = permalink.choice(sidebar.selectbox, "Regime", regimes, key="regime")
    rows = rows[rows["regime"] == regime]
    kinds = sorted({kind for value in table["conditioning"] for kind in value.split(",")})
    conditioning = permalink.choices(sidebar.multiselect, "Conditioning", kinds, key="conditioning", default=kinds)
    rows = rows[rows["conditioning"].map(lambda value: bool(set(value.split(",")) & set(conditioning)))]
    references = sorted(rows["reference"].unique(), key=lambda name: (name != BASELINE, name))
    reference = permalink.choice(sidebar.selectbox, "Compared with", references, key="reference")
    rows = rows[rows["reference"] == reference]
    if permalink.flag(sidebar.checkbox, "Ranked entries only (recomputed by CI)", key="ranked_only"):
        rows = rows[rows["ranked"]]
    return rows
