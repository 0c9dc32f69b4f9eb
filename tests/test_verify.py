"""`cxrbench verify` retrains what CI can reach: predictions forged toward the public test labels, or a baseline made
worse, validate (every number recomputes from them) but are refused; the board ranks only recomputed entries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrbench.errors import SubmissionError
from cxrbench.leaderboard.table import build_table, read_board
from cxrbench.protocol import PREDICTION_TOLERANCE
from cxrbench.recompute import verify
from cxrbench.registry import get_task
from cxrbench.scoring import score_predictions
from cxrbench.submission import (
    decode_predictions,
    encode_predictions,
    load_card,
    load_task_submission,
    task_files,
)
from cxrbench.validate import _check_file, validate
from cxrbench.verification import level

from .test_submissions import CLS_FILE, ENTRY, SUBMISSIONS, pytestmark  # noqa: F401 - the same skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One cache for the module: the three seed-0 cells of the file are trained once, then compared many times."""
    return tmp_path_factory.mktemp("verify-cache")


@pytest.fixture()
def entry(tmp_path) -> Path:
    folder = tmp_path / ENTRY
    shutil.copytree(SUBMISSIONS / ENTRY, folder)
    return folder


def _forge(folder: Path, arm: str, change) -> None:
    """What a hostile submitter does: edit seed 0's test predictions of `arm`, then rescore the whole suite with the
    project's own scoring so that every stored number recomputes from the edited predictions."""
    path = folder / CLS_FILE
    data = json.loads(path.read_text())
    arrays = decode_predictions(data["predictions"])
    key = next(k for k in arrays if k.startswith(f"{arm}|") and k.endswith("|0|test_prob"))
    arrays[key] = change(arrays[key]).astype(arrays[key].dtype)
    data["predictions"] = encode_predictions(arrays)
    path.write_text(json.dumps(data))
    card = load_card(folder / "generator.yaml")
    items = [(file, _check_file(file, card, None)[1]) for file in task_files(folder)]
    scored = score_predictions([item for _, (_, item) in items], n_boot=2000)
    for (file, _), result in zip(items, scored.tasks, strict=True):
        stored = json.loads(file.read_text())
        stored["result"] = result.model_dump(mode="json")
        file.write_text(json.dumps(stored))


def _test_labels() -> np.ndarray:
    task = get_task("phantom_cls")
    return task.load(None, train_size=task.meta.regimes["scarce"]).test.labels.astype(np.float32)


def test_a_committed_entry_matches_ci_retraining(entry, cache):
    [checked] = verify([entry / CLS_FILE], cache, seeds=[0], show_progress=False)
    assert checked.level == "recomputed"
    assert checked.cells == 2  # real_only and oracle, seed 0 (a control has no reference arm)
    assert checked.largest_difference <= PREDICTION_TOLERANCE


@pytest.mark.reliability("hostile_file")
@pytest.mark.parametrize("arm, change", [
    ("oracle", lambda prob: 0.5 * prob + 0.5 * _test_labels()),  # the generator's arm pulled toward the labels
    ("real_only", lambda prob: 1.0 - prob),  # the baseline made worse, so that every generator looks better
], ids=["generator-arm-toward-labels", "baseline-made-worse"])
def test_forged_predictions_validate_but_are_refused(entry, cache, arm, change):
    _forge(entry, arm, change)
    validate([entry])  # the arithmetic holds: this is the attack
    with pytest.raises(SubmissionError) as caught:
        verify([entry / CLS_FILE], cache, seeds=[0], show_progress=False)
    assert f"{CLS_FILE}: predictions: {arm}|" in str(caught.value)
    assert "do not come from the protocol's training" in str(caught.value)


def test_levels_follow_from_what_ci_can_retrain(entry):
    own = load_task_submission(entry / CLS_FILE)
    assert level(own, public_data=True) == "recomputed"
    assert level(own.model_copy(update={"verified": False}), public_data=True) == "spot-checked"
    assert level(own, public_data=False) == "self-reported"


def test_the_board_ranks_only_recomputed_entries(tmp_path):
    board = tmp_path / "submissions"
    for name in ("oracle", "noise"):
        shutil.copytree(SUBMISSIONS / name, board / name)
    path = board / "noise" / CLS_FILE
    data = json.loads(path.read_text())
    data["verified"] = False  # as a third-party generator's entry is: CI cannot run its code
    path.write_text(json.dumps(data))
    table = build_table(read_board(board).entries)
    rows = table[(table["task"] == "phantom_cls") & (table["regime"] == "scarce") & (table["reference"] == "real_only")]
    assert list(rows["generator"]) == ["oracle", "noise"]  # noise is listed after oracle, whatever its Δ
    assert list(rows["verification"]) == ["recomputed", "spot-checked"]
    assert list(rows["ranked"]) == [True, False]
