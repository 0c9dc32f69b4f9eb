"""`cxrbench verify` retrains what CI can reach: predictions forged toward the public test labels, or a baseline made
worse, validate (every number recomputes from them) but are refused; the board ranks only recomputed entries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrbench.carried import conditions_digest, read_sets, sets_path, write_sets
from cxrbench.errors import SubmissionError
from cxrbench.generators.noise import Noise
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

from .test_submissions import (  # noqa: F401 - pytestmark: the same skip
    CLS_FILE,
    ENTRY,
    SUBMISSIONS,
    copy_entry_without_quality,
    pytestmark,
    retrained_on_another_vendor,
    without_quality,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One cache for the module: the three seed-0 cells of the file are trained once, then compared many times."""
    return tmp_path_factory.mktemp("verify-cache")


@pytest.fixture()
def entry(tmp_path) -> Path:
    return copy_entry_without_quality(SUBMISSIONS / ENTRY, tmp_path / ENTRY)


def _rescore(folder: Path) -> None:
    """Rewrite every number of the entry from its stored predictions with the project's own scoring (what a hostile
    submitter does after editing predictions, so that the arithmetic holds)."""
    card = load_card(folder / "generator.yaml")
    items = [(file, _check_file(file, card, None, None)[1]) for file in task_files(folder)]
    scored = score_predictions([item for _, (_, item) in items], n_boot=2000)
    for (file, _), result in zip(items, scored.tasks, strict=True):
        stored = json.loads(file.read_text())
        stored["result"] = result.model_dump(mode="json")
        file.write_text(json.dumps(stored))


def _forge(folder: Path, arm: str, change) -> None:
    """Edit seed 0's test predictions of `arm` in the phantom_cls file, then rescore."""
    path = folder / CLS_FILE
    data = json.loads(path.read_text())
    arrays = decode_predictions(data["predictions"])
    key = next(k for k in arrays if k.startswith(f"{arm}|") and k.endswith("|0|test_prob"))
    arrays[key] = change(arrays[key]).astype(arrays[key].dtype)
    data["predictions"] = encode_predictions(arrays)
    path.write_text(json.dumps(data))
    _rescore(folder)


def _test_labels() -> np.ndarray:
    task = get_task("phantom_cls")
    return task.load(None, train_size=task.meta.regimes["scarce"]).test.labels.astype(np.float32)


@retrained_on_another_vendor
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
    third_party = own.model_copy(update={"verified": False})
    assert level(own, public_data=True, carries_sets=False) == "recomputed"
    assert level(third_party, public_data=True, carries_sets=True) == "recomputed"
    assert level(third_party, public_data=True, carries_sets=False) == "spot-checked"
    assert level(own, public_data=False, carries_sets=False) == "self-reported"


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


THIRD_PARTY = "mixnoise"


@pytest.fixture()
def third_party_entry(tmp_path) -> Path:
    """The committed noise entry as a third-party generator's entry would be: its arms under another name that no
    registry knows, with the classic_aug reference arms a generator needs (from the classic_aug entry), rescored;
    and the phantom_cls scarce arm's synthetic sets carried, remade with the noise generator's code."""
    folder = tmp_path / THIRD_PARTY
    folder.mkdir()
    card = (SUBMISSIONS / "noise" / "generator.yaml").read_text().replace("name: noise", f"name: {THIRD_PARTY}")
    (folder / "generator.yaml").write_text(card)
    shutil.copytree(SUBMISSIONS / "noise" / "gallery", folder / "gallery",
                    ignore=shutil.ignore_patterns("*__closest_pairs.png"))
    for source in sorted((SUBMISSIONS / "noise").glob("embedded__*.json")):
        own, reference = (without_quality(json.loads(source.read_text())),
                          json.loads((SUBMISSIONS / "classic_aug" / source.name).read_text()))
        arrays = {key.replace("noise|", f"{THIRD_PARTY}|", 1): value
                  for key, value in decode_predictions(own["predictions"]).items()}
        arrays |= {key: value for key, value in decode_predictions(reference["predictions"]).items()
                   if key.startswith("classic_aug|")}
        for arm in own["result"]["arms"]:
            arm["generator"] = THIRD_PARTY
        own["result"]["arms"] += [a for a in reference["result"]["arms"] if a["generator"] == "classic_aug"]
        own |= {"generator": THIRD_PARTY, "verified": False, "predictions": encode_predictions(arrays),
                "generators": [{**own["generators"][0], "name": THIRD_PARTY, "role": "generator"},
                               reference["generators"][0]]}
        (folder / source.name).write_text(json.dumps(own))
    _rescore(folder)
    _carry_noise_sets(folder / CLS_FILE)
    return folder


def _carry_noise_sets(path: Path, seed_offset: int = 0) -> None:
    submission = load_task_submission(path)
    task = get_task(submission.task)
    train = task.load(None, train_size=task.meta.regimes[submission.result.regime]).train
    noise = Noise(task.meta)
    noise.fit(train, seed=0, workdir=path.parent)
    sets = {}
    for arm in submission.result.arms:
        if arm.generator == THIRD_PARTY:
            for s in arm.seeds:
                conditions = task.conditions(train, arm.n_synthetic, seed=s.seed)
                sets[conditions_digest(conditions)] = noise.generate(conditions, seed=s.seed + seed_offset)
    sets_path(path).parent.mkdir(exist_ok=True)
    sets_path(path).write_bytes(write_sets(sets))


@retrained_on_another_vendor
def test_a_third_party_entry_is_retrained_from_the_sets_it_carries(third_party_entry, cache):
    validate([third_party_entry])
    [checked] = verify([third_party_entry / CLS_FILE], cache, seeds=[0], show_progress=False)
    assert (checked.level, checked.cells) == ("recomputed", 3)  # real_only, its own arm (carried), classic_aug
    assert checked.largest_difference <= PREDICTION_TOLERANCE


@pytest.mark.reliability("hostile_file")
def test_carried_images_that_did_not_make_the_predictions_are_refused(third_party_entry, cache):
    _carry_noise_sets(third_party_entry / CLS_FILE, seed_offset=1000)  # other images for the same conditions
    with pytest.raises(SubmissionError) as caught:
        verify([third_party_entry / CLS_FILE], cache, seeds=[0], show_progress=False)
    assert f"predictions: {THIRD_PARTY}|1|0|test_prob: differs from CI's retraining" in str(caught.value)


@retrained_on_another_vendor
def test_without_carried_sets_only_the_references_are_retrained(third_party_entry, cache):
    sets_path(third_party_entry / CLS_FILE).unlink()
    [checked] = verify([third_party_entry / CLS_FILE], cache, seeds=[0], show_progress=False)
    assert (checked.level, checked.cells) == ("spot-checked", 2)  # real_only and classic_aug


@pytest.mark.reliability("hostile_file")
def test_carried_sets_must_match_the_entrys_arms(third_party_entry):
    path = sets_path(third_party_entry / CLS_FILE)
    sets = read_sets(path)
    first = next(iter(sets))
    path.write_bytes(write_sets({first: sets[first][:3] / 65535}))
    with pytest.raises(SubmissionError) as caught:
        validate([third_party_entry])
    assert "synthetic/embedded__phantom_cls__scarce.npz: has no set for ratio 1, seed 1" in str(caught.value)
    assert "has shape (3, 64, 64); expected (50, 64, 64)" in str(caught.value)
