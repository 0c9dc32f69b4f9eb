"""The overview: every generator across every (suite, task, regime, ratio) cell at once, one column group per
family of numbers (`column_groups.GROUPS`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.ranks import ranks_within
from cxrbench.leaderboard.views import permalink
from cxrbench.leaderboard.views.column_groups import GROUPS, ColumnGroup
from cxrbench.leaderboard.views.download import table_with_download
from cxrbench.leaderboard.views.text import plain
from cxrbench.protocol import BASELINE

CELL = ["suite", "task", "regime", "ratio"]


def cell_label(suite: str, task: str, regime: str, ratio: float) -> str:
    return f"{suite} · {task} · {regime} ×{ratio:g}"


def overview_table(rows: pd.DataFrame, groups: Sequence[ColumnGroup]) -> pd.DataFrame:
    """One row per generator (by name), then for each cell one column per group (a cell's numbers side by side);
    cells in suite and task order, the smallest regime first. A generator without a result in a cell has an empty
    text there."""
    rows = rows.assign(rank=ranks_within(rows, CELL + ["reference"]))
    cells = rows.sort_values(["suite", "task", "n_real", "ratio"]).drop_duplicates(CELL)[CELL]
    where = pd.MultiIndex.from_frame(rows[["generator", *CELL]])
    texts = {group.slug: pd.Series(rows.apply(group.text, axis=1).to_numpy(), index=where) for group in groups}
    names = sorted(rows["generator"].unique())
    columns = {"generator": names}
    for cell in cells.itertuples(index=False):
        for group in groups:
            columns[group.header(cell_label(*cell))] = [texts[group.slug].get((name, *cell), "") for name in names]
    return pd.DataFrame(columns)


def render(entries, table: pd.DataFrame) -> None:
    st.title("Overview")
    st.caption("Every generator (rows) in every suite, task, regime and synthetic ratio (×, columns). Each cell: Δ "
               "against the reference, its primary 95% interval (training seeds and test patients together) and the "
               "verdict after the entry's Holm correction; a cell CI did not fully recompute names its verification "
               "level. More column groups (rank with ties, p, MDE, verification, transfer efficiency where entries "
               "carry it) from the sidebar.")
    if table.empty:
        st.info("No submissions yet.")
        return
    suites = sorted(table["suite"].unique())
    chosen = permalink.choices(st.sidebar.multiselect, "Suites", suites, key="suites", default=suites)
    rows = table[table["suite"].isin(chosen)]
    references = sorted(rows["reference"].unique(), key=lambda name: (name != BASELINE, name))
    reference = permalink.choice(st.sidebar.selectbox, "Compared with", references, key="reference")
    rows = rows[rows["reference"] == reference]
    offered = {group.slug: group for group in GROUPS if group.present(table)}
    slugs = permalink.choices(st.sidebar.multiselect, "Column groups", list(offered), key="columns",
                              default=[GROUPS[0].slug], format_func=lambda slug: offered[slug].title)
    if rows.empty or not slugs:
        st.info("No submission matches these filters." if rows.empty else "Choose at least one column group.")
        return
    st.subheader(f"Δ vs {plain(reference)}")
    frame = overview_table(rows, [offered[slug] for slug in slugs])
    table_with_download(frame, f"cxrbench_overview_vs_{reference}.csv", key="csv_overview",
                        pinned=["generator"])
