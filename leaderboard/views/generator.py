"""A generator's page: its card, its results per task, its per-seed scores and its synthetic images."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.table import Entry, seed_scores
from cxrbench.leaderboard.views import permalink
from cxrbench.leaderboard.views.text import plain


def card_table(entry: Entry) -> pd.DataFrame:
    card = entry.card
    fields = {"name": card.name, "revision": card.revision, "authors": ", ".join(card.authors), "code": card.code,
              "licence": card.licence, "conditioning": ", ".join(card.conditioning),
              "training data": ", ".join(f"{d.dataset}/{d.split}" for d in card.training_data) or "none declared",
              "hardware": card.hardware}
    return pd.DataFrame({"field": list(fields), "value": list(fields.values())})


def render(entries: list[Entry], table: pd.DataFrame) -> None:
    if not entries:
        st.info("No submissions yet.")
        return
    names = [e.card.name for e in entries]
    name = permalink.choice(st.sidebar.selectbox, "Generator", names, key="generator")
    entry = entries[names.index(name)]
    st.title(f"Generator {plain(name)}")
    st.text(entry.card.description)
    st.dataframe(card_table(entry), hide_index=True, width="stretch")
    st.subheader("Results")
    rows = table[table["generator"] == name]
    st.dataframe(rows[["suite", "task", "regime", "ratio", "reference", "verdict", "delta", "ci_low", "ci_high",
                       "p_holm", "mde", "reference_score", "arm_score", "verification", "date"]], hide_index=True,
                 width="stretch")
    st.subheader("Per-seed scores")
    seeds = seed_scores(entry)
    per_seed = seeds.pivot_table(index=["suite", "task", "regime", "arm", "ratio"], columns="seed", values="score")
    st.dataframe(per_seed.rename(columns="seed {}".format).reset_index(), hide_index=True, width="stretch")
    st.subheader("Synthetic images per condition (seed 0)")
    for sub in entry.tasks:
        if not sub.gallery:
            st.caption(f"{plain(sub.task)}: no images (entries on real data carry none: the datasets may not be "
                       "redistributed)")
            continue
        st.markdown(f"**{plain(sub.task)}, {plain(sub.result.regime)} regime**")
        for image in sub.gallery:
            st.image(str(entry.folder / image.file))
            st.text(image.condition)  # not a caption: captions render Markdown, and even escaped, a bare URL links
