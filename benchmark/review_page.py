"""The reviewer's page (`cxrbench review`): one synthetic image at a time with its condition, accept or reject.

Run by Streamlit, configured through the environment (`cxrbench review` sets it): which synthetic
set (`CXRBENCH_REVIEW_SET`), which feedback file (`CXRBENCH_REVIEW_FEEDBACK`), who reviews
(`CXRBENCH_REVIEWER`). Every verdict is appended to the feedback file at once, so closing the page
loses nothing and the next session starts at the first image nobody has judged yet.
Keyboard: `a` accepts, `x` rejects (Streamlit button shortcuts; it reserves `r` for rerun).
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
from PIL import Image

from cxrbench.feedback import FeedbackRecord, append_feedback, now, read_feedback
from cxrbench.synthetic import load_synthetic_set, with_condition

if not {"CXRBENCH_REVIEW_SET", "CXRBENCH_REVIEW_FEEDBACK"} <= os.environ.keys():
    st.error("This page is opened by `cxrbench review --generator G --task T`, which tells it the synthetic set "
             "and the feedback file (CXRBENCH_REVIEW_SET, CXRBENCH_REVIEW_FEEDBACK).")
    st.stop()
SET_DIR = Path(os.environ["CXRBENCH_REVIEW_SET"])
FEEDBACK = Path(os.environ["CXRBENCH_REVIEW_FEEDBACK"])
manifest, images = load_synthetic_set(SET_DIR)
hashes = [entry.sha256 for entry in manifest.entries]

st.set_page_config(page_title=f"review {manifest.generator}", layout="centered")
st.title(f"Review: {manifest.generator} on {manifest.task}")
reviewer = st.text_input("Reviewer", value=os.environ.get("CXRBENCH_REVIEWER", ""), key="reviewer")

feedback = read_feedback(FEEDBACK, revision=manifest.generator_revision, known_hashes=set(hashes))
if feedback.skipped:
    st.warning(f"{FEEDBACK}: {feedback.summary()}")
pending = [i for i, h in enumerate(hashes) if h not in feedback.verdicts]
rejected = sum(v.verdict == "reject" for v in feedback.verdicts.values())
st.caption(f"revision {manifest.generator_revision} · seed {manifest.seed} · {len(feedback.verdicts)} of "
           f"{len(hashes)} reviewed, {rejected} rejected · feedback file {FEEDBACK}")
st.progress(len(feedback.verdicts) / max(1, len(hashes)))


def record(image_hash: str, verdict: str) -> None:
    append_feedback(FEEDBACK, FeedbackRecord(
        reviewer=st.session_state.reviewer.strip(), time=now(), image_sha256=image_hash, generator=manifest.generator,
        generator_revision=manifest.generator_revision, task=manifest.task, verdict=verdict,
        comment=st.session_state.get("comment", "")))
    st.session_state.comment = ""


if not pending:
    st.success("Every image of this set has a verdict.")
    st.stop()
entry = manifest.entries[pending[0]]
image = images[pending[0]]
requested = ", ".join(f"{name} {'present' if value else 'absent'}" for name, value in entry.condition.labels.items())
st.markdown(f"**{entry.file}**: asked for {requested}"
            + (" (requested mask outlined in red)" if entry.condition.kind == "mask" else ""))
st.image(Image.fromarray(with_condition(image, entry.condition)).resize((384, 384), Image.NEAREST))
st.text_input("Comment (optional)", key="comment")
if not reviewer.strip():
    st.info("Enter your name to review.")
    st.stop()
accept, reject = st.columns(2)
accept.button("Accept (a)", key="accept", shortcut="a", on_click=record, args=(entry.sha256, "accept"),
              use_container_width=True)
reject.button("Reject (x)", key="reject", shortcut="x", on_click=record, args=(entry.sha256, "reject"),
              use_container_width=True)
