"""Reviewer feedback: the Streamlit page writes and resumes, bad lines are counted, rejections leave the next set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cxrbench.cache import Cache
from cxrbench.cell import synthetic_set
from cxrbench.feedback import FeedbackRecord, append_feedback, now, read_feedback
from cxrbench.plan import first_ratio_cell, first_regime_plan
from cxrbench.registry import generator_class, get_task
from cxrbench.review import reviewed_set
from cxrbench.schemas import RunConfig
from cxrbench.synthetic import MANIFEST, SyntheticManifest, write_synthetic_set

PAGE = Path(__file__).resolve().parents[1] / "benchmark" / "review_page.py"


@pytest.fixture
def small_set(tmp_path, monkeypatch):
    task = get_task("phantom_seg")
    train = task.load(None, train_size=16).train
    conditions = task.conditions(train, 4, seed=0)
    images = np.random.default_rng(0).random((4, 64, 64)).astype(np.float32)
    write_synthetic_set(tmp_path / "set", images, conditions, generator="ldm_mask", revision="rev1",
                        task="phantom_seg", seed=0)
    manifest = SyntheticManifest.model_validate_json((tmp_path / "set" / MANIFEST).read_text())
    feedback = tmp_path / "feedback.jsonl"
    monkeypatch.setenv("CXRBENCH_REVIEW_SET", str(tmp_path / "set"))
    monkeypatch.setenv("CXRBENCH_REVIEW_FEEDBACK", str(feedback))
    monkeypatch.setenv("CXRBENCH_REVIEWER", "dr who")
    return manifest, feedback


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _session() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=30).run()


def test_accept_and_reject_append_the_right_lines_and_a_new_session_resumes(small_set):
    manifest, feedback = small_set
    app = _session()
    assert not app.exception and "images/000000.png" in app.markdown[0].value
    app.button(key="accept").click().run()
    app.text_input(key="comment").input("lung edge missing")
    app.button(key="reject").click().run()
    first, second = _lines(feedback)
    assert first["verdict"] == "accept" and first["image_sha256"] == manifest.entries[0].sha256
    assert second["verdict"] == "reject" and second["image_sha256"] == manifest.entries[1].sha256
    assert second["comment"] == "lung edge missing" and first["comment"] == ""
    assert (first["reviewer"], first["generator"], first["generator_revision"]) == ("dr who", "ldm_mask", "rev1")
    assert FeedbackRecord.model_validate(second).time <= now()

    resumed = _session()  # a second session starts at the first image without a verdict
    assert "images/000002.png" in resumed.markdown[0].value
    assert "2 of 4 reviewed, 1 rejected" in resumed.caption[0].value


def test_bad_feedback_lines_are_counted_and_skipped(small_set):
    manifest, feedback = small_set
    good = FeedbackRecord(reviewer="a", time=now(), image_sha256=manifest.entries[0].sha256, generator="ldm_mask",
                          generator_revision="rev1", task="phantom_seg", verdict="reject")
    append_feedback(feedback, good)
    append_feedback(feedback, good.model_copy(update={"image_sha256": "0" * 64}))
    append_feedback(feedback, good.model_copy(update={"generator_revision": "rev0"}))
    with open(feedback, "a") as handle:
        handle.write(good.model_dump_json()[:40] + "\n")  # a truncated line
    read = read_feedback(feedback, revision="rev1", known_hashes={e.sha256 for e in manifest.entries})
    assert list(read.verdicts) == [manifest.entries[0].sha256]
    assert read.skipped == {"unreadable": 1, "unknown image hash": 1, "other generator revision": 1}
    assert any(":4:" in problem for problem in read.problems)
    app = _session()
    assert "skipped 3 lines" in app.warning[0].value


@pytest.mark.slow
def test_the_page_opened_without_cxrbench_review_says_how_to_open_it(monkeypatch):
    monkeypatch.delenv("CXRBENCH_REVIEW_SET", raising=False)
    page = _session()
    assert not page.exception
    assert "cxrbench review" in page.error[0].value


def test_recorded_rejections_remove_exactly_those_images_from_the_next_set(tmp_path):
    tiny = {"preset": "tiny"}
    config = RunConfig(tasks=["phantom_seg"], generators=["ldm_mask"], train_size=16,
                       generator_config={"ldm_mask": tiny})
    reviewed = SyntheticManifest.model_validate_json(
        (reviewed_set("phantom_seg", "ldm_mask", tmp_path / "cache", config) / MANIFEST).read_text())
    hashes = [e.sha256 for e in reviewed.entries]
    feedback = tmp_path / "feedback.jsonl"
    for i, verdict in [(0, "accept"), (1, "reject"), (3, "reject"), (2, "accept")]:
        append_feedback(feedback, FeedbackRecord(reviewer="r", time=now(), image_sha256=hashes[i], generator="ldm_mask",
                                                 generator_revision=reviewed.generator_revision, task="phantom_seg",
                                                 verdict=verdict))
    append_feedback(feedback, FeedbackRecord(reviewer="r", time=now(), image_sha256="f" * 64, generator="ldm_mask",
                                             generator_revision=reviewed.generator_revision, task="phantom_seg",
                                             verdict="reject"))
    variant = {**tiny, "feedback": str(feedback), "refine": {"rounds": 0}}
    next_config = RunConfig(tasks=["phantom_seg"], generators=["ldm_mask_reviewed"], train_size=16,
                            generator_config={"ldm_mask_reviewed": variant})
    plan = first_regime_plan("phantom_seg", next_config)
    _, cell = first_ratio_cell(plan, "ldm_mask_reviewed", 0)
    cache = Cache(tmp_path / "cache")
    synthetic_set(cell, cache, plan.splits)
    made = SyntheticManifest.model_validate_json((cache.path("synthetic", cell.synthetic_key) / MANIFEST).read_text())
    new = [e.sha256 for e in made.entries]
    assert len(new) == len(hashes)
    assert set(new) & set(hashes) == set(hashes) - {hashes[1], hashes[3]}
    assert [new[i] for i in (1, 3)] != [hashes[i] for i in (1, 3)]
    review = made.notes["review"]
    assert review["reviewed"] == 4 and review["rejected"] == 2 and review["skipped"] == {"unknown image hash": 1}
    assert made.notes["filter"] == "reviewer"


def test_every_reviewed_round_reads_the_verdicts_on_the_plain_models_revision():
    meta = get_task("phantom_seg").meta
    round_one = generator_class("ldm_mask_reviewed")(meta, preset="tiny", feedback="reviews.jsonl",
                                                     refine={"rounds": 1})
    round_zero = round_one.refines()
    plain = round_zero.refines()
    plain.model = "the plain fit"
    plain.mark_fitted("plain fit key")
    round_zero.start_from(plain)
    round_zero.mark_fitted("round 0 fit key")
    round_one.start_from(round_zero)
    assert round_zero.reviewed_revision == round_one.reviewed_revision == plain.revision() != round_zero.revision()


def _record(i: int) -> FeedbackRecord:
    return FeedbackRecord(reviewer="r", time=now(), image_sha256=f"{i:064x}", generator="ldm_mask",
                          generator_revision="rev", task="phantom_seg", verdict="reject")


def test_a_verdict_after_a_cut_short_line_is_not_glued_onto_it(tmp_path):
    feedback = tmp_path / "f.jsonl"
    append_feedback(feedback, _record(1))
    feedback.write_bytes(feedback.read_bytes()[:-20])  # a crash mid-line
    append_feedback(feedback, _record(2))
    read = read_feedback(feedback, revision="rev")
    assert set(read.verdicts) == {f"{2:064x}"} and read.skipped["unreadable"] == 1


def test_a_short_write_is_an_error_not_a_lost_verdict(tmp_path, monkeypatch):
    import cxrbench.feedback as module

    real_write = os.write
    monkeypatch.setattr(module.os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError, match="only .* bytes of the verdict were written"):
        append_feedback(tmp_path / "f.jsonl", _record(1))


def test_the_review_page_listens_on_this_machine_only_unless_asked(monkeypatch, tmp_path):
    import cxrbench.review as review

    commands = []
    monkeypatch.setattr(review.subprocess, "call", lambda command, env: commands.append(command) or 0)
    review.open_review_page(tmp_path, tmp_path / "f.jsonl", "r", 8502)
    review.open_review_page(tmp_path, tmp_path / "f.jsonl", "r", 8502, address="0.0.0.0")
    assert [c[c.index("--server.address") + 1] for c in commands] == ["127.0.0.1", "0.0.0.0"]
