"""A generator's page: its card, its results per task, its per-seed scores, its arms' fidelity and privacy, its
synthetic images and, on tasks whose images may be published, its closest-pairs figures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxrbench.leaderboard.table import Entry, quality_table, seed_scores
from cxrbench.leaderboard.views import permalink
from cxrbench.leaderboard.views.text import plain
from cxrbench.registry import get_task


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
    render_quality(entry)
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


def closest_pairs_text(sub) -> str:
    """The figure's rows in words: each pair's pixel distance (plain text: nothing from an entry is rendered as
    Markdown or HTML)."""
    quality = next((q for q in sub.result.quality if q.generator == sub.generator), None)
    pixels = None if quality is None else quality.memorisation.get("pixels")
    if pixels is None:
        return "(no pixel-space pairs stated)"
    lines = [f"row {i + 1}: synthetic image {p.synthetic} beside training image {p.training}, pixel distance "
             f"{p.distance:.3f}" for i, p in enumerate(pixels.closest_pairs)]
    return "\n".join([*lines, f"(real test images: 5th percentile of their distance to the nearest training image "
                                f"{pixels.test_distances.p05:.3f}; the threshold {pixels.threshold:.3f})"])


def render_quality(entry: Entry) -> None:
    """The arms' fidelity and privacy numbers (with the extractor each was computed in) and the closest-pairs figures
    (embedded tasks only: real images of other datasets are never shown)."""
    qualities = quality_table(entry)
    if qualities.empty:
        return
    st.subheader("Fidelity and privacy of the assessed synthetic sets (seed 0)")
    st.caption("Against the real test images (fidelity) and the regime's training images (closer than test: the "
               "share of synthetic images nearer a training image than 95% of real test images are; re-identified: "
               "the share a patient verifier takes for their nearest training image's patient). Numbers of "
               "different extractors are not comparable.")
    st.dataframe(qualities, hide_index=True, width="stretch")
    for sub in entry.tasks:
        if sub.closest_pairs is None or not get_task(sub.task).redistributable:
            continue
        st.markdown(f"**Closest pairs, {plain(sub.task)}, {plain(sub.result.regime)} regime** (synthetic left, "
                    f"nearest training image right, nearest first)")
        st.image(str(entry.folder / sub.closest_pairs))
        st.text(closest_pairs_text(sub))
