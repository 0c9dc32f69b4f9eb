"""An entry's quality numbers: `cxrbench submit` stores what they follow from, `cxrbench validate` recomputes them
and refuses forged numbers, forged or misshapen features, another extractor, a forged closest-pairs figure, and an
oversize or linked file of assessed sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrbench.assessed_sets import MAX_ASSESSED_BYTES, assessed_path, read_assessed, write_assessed
from cxrbench.errors import SubmissionError
from cxrbench.validate import validate

from .conftest import TINY
from .test_quality_board import _quality
from .test_submissions import (  # noqa: F401 - pytestmark: the same skip
    CLS_FILE,
    ENTRY,
    SUBMISSIONS,
    copy_entry_without_quality,
    pytestmark,
)


@pytest.fixture()
def entry(tmp_path) -> Path:
    """The committed oracle entry without its quality, its phantom_cls scarce file stating (made-up) quality
    numbers."""
    folder = copy_entry_without_quality(SUBMISSIONS / ENTRY, tmp_path / "board" / ENTRY)
    path = folder / CLS_FILE
    data = json.loads(path.read_text())
    data["result"]["quality"] = [_quality("oracle", 0.0).model_dump(mode="json")]
    path.write_text(json.dumps(data))
    return folder


def _refused(folder: Path, expected: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        validate([folder])
    assert expected in str(caught.value), str(caught.value)


@pytest.mark.reliability("hostile_file")
def test_stated_quality_without_its_arrays_is_refused(entry):
    _refused(entry, f"quality/{Path(CLS_FILE).stem}.npz: is missing: CI recomputes")


@pytest.mark.reliability("hostile_file")
def test_an_oversize_file_of_assessed_sets_is_refused(entry):
    """A few kB of zeros that unpack to more than the limit."""
    path = assessed_path(entry / CLS_FILE)
    path.parent.mkdir()
    path.write_bytes(write_assessed({"oracle|1|0|features": np.zeros((MAX_ASSESSED_BYTES // 32, 8))}))
    assert path.stat().st_size < 1_000_000
    _refused(entry, "unpacks to")


@pytest.mark.reliability("hostile_file")
def test_a_linked_file_of_assessed_sets_is_refused(entry, tmp_path):
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes(write_assessed({"oracle|1|0|features": np.zeros((50, 8))}))
    path = assessed_path(entry / CLS_FILE)
    path.parent.mkdir()
    path.symlink_to(outside)
    _refused(entry, "is a symbolic link")


def test_assessed_sets_of_an_entry_without_quality_are_refused(tmp_path):
    folder = copy_entry_without_quality(SUBMISSIONS / ENTRY, tmp_path / "board" / ENTRY)
    path = assessed_path(folder / CLS_FILE)
    path.parent.mkdir()
    path.write_bytes(write_assessed({"oracle|1|0|features": np.zeros((50, 8))}))
    _refused(folder, "holds assessed sets, but the result states no quality numbers")


def test_unknown_arrays_and_pickles_are_refused(tmp_path):
    path = tmp_path / "sets.npz"
    path.write_bytes(write_assessed({"oracle|1|0|weights": np.zeros(3)}))
    with pytest.raises(ValueError, match="unknown array"):
        read_assessed(path)
    np.savez(path, **{"oracle|1|0|features": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="not an npz archive of assessed sets"):
        read_assessed(path)


# --- recomputation (a tiny run's draft; needs the extractors and the verifier) -------------------------------------

@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    """A tiny phantom_cls run of oracle with quality, drafted as an entry (a tiny run is off-protocol, so the quality
    checker is called on the draft directly, with the tiny regime's splits)."""
    from cxrbench import quality
    from cxrbench.fidelity.patient_pairs import TINY_VERIFIER
    from cxrbench.runner import run
    from cxrbench.schemas import RunConfig
    from cxrbench.submission import load_card
    from cxrbench.submit import draft

    root = tmp_path_factory.mktemp("quality-entry")
    cache = root / "cache"
    config = RunConfig(tasks=["phantom_cls"], generators=["oracle"], **TINY | {"quality": True})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality, "VERIFIER_SETTINGS", TINY_VERIFIER)
        result = run(config, cache, workers=1, show_progress=False)
        (root / "run.json").write_text(result.model_dump_json())
        (root / "oracle.yaml").write_text((SUBMISSIONS / ENTRY / "generator.yaml").read_text())
        [path] = draft(root / "run.json", load_card(root / "oracle.yaml"), cache, root / "draft" / "oracle")
    return path, cache


def _problems(path: Path, cache: Path) -> list[tuple[str, str]]:
    from cxrbench import quality
    from cxrbench.cache import Cache
    from cxrbench.fidelity.patient_pairs import TINY_VERIFIER
    from cxrbench.registry import get_task
    from cxrbench.submission import load_task_submission
    from cxrbench.task_data import load_splits
    from cxrbench.validate_quality import QualityChecker

    submission = load_task_submission(path)
    task = get_task(submission.task)
    problems = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality, "VERIFIER_SETTINGS", TINY_VERIFIER)
        QualityChecker(Cache(cache), None).check(path, submission, task, load_splits(task.meta.name, None, 24),
                                                 {"oracle": False}, lambda field, what: problems.append((field, what)))
    return problems


def _forged(drafted, tmp_path, change_entry=None, change_arrays=None) -> tuple[Path, Path]:
    path, cache = drafted
    folder = tmp_path / "oracle"
    shutil.copytree(path.parent, folder)
    copy = folder / path.name
    if change_entry:
        data = json.loads(copy.read_text())
        change_entry(data)
        copy.write_text(json.dumps(data))
    if change_arrays:
        arrays = read_assessed(assessed_path(copy))
        change_arrays(arrays)
        stored = {k: v.astype(np.float32) / 65535 if k.endswith("|images") else v for k, v in arrays.items()}
        assessed_path(copy).write_bytes(write_assessed(stored))
    return copy, cache


def test_a_drafted_entry_stores_its_quality_and_recomputes_equal(drafted):
    path, cache = drafted
    data = json.loads(path.read_text())
    assert [q["generator"] for q in data["result"]["quality"]] == ["oracle"]
    assert set(data["result"]["quality"][0]["memorisation"]) == {"features", "pixels"}
    arrays = read_assessed(assessed_path(path))
    assert sorted(k.rsplit("|", 1)[1] for k in arrays) == ["features", "images"]
    assert (path.parent / data["closest_pairs"]).is_file()
    assert _problems(path, cache) == []


def test_a_forged_fid_is_refused(drafted, tmp_path):
    def lower(data):
        data["result"]["quality"][0]["fidelity"]["fid"]["value"] /= 2

    problems = _problems(*_forged(drafted, tmp_path, change_entry=lower))
    assert any(field == "result.quality[0].fidelity.fid.value" and "recomputed from the stored features" in what
               for field, what in problems), problems


def test_forged_features_are_refused(drafted, tmp_path):
    def shift(arrays):
        key = next(k for k in arrays if k.endswith("|features"))
        arrays[key] = arrays[key] + 0.1

    problems = _problems(*_forged(drafted, tmp_path, change_arrays=shift))
    assert any("are not the features of the stored images" in what for _, what in problems), problems


def test_features_of_the_wrong_shape_are_refused(drafted, tmp_path):
    def cut(arrays):
        key = next(k for k in arrays if k.endswith("|features"))
        arrays[key] = arrays[key][:, :3]

    problems = _problems(*_forged(drafted, tmp_path, change_arrays=cut))
    assert any("has shape" in what for _, what in problems), problems


def test_another_extractor_is_refused(drafted, tmp_path):
    def other(data):
        data["result"]["quality"][0]["extractor"]["weights_sha256"] = "0" * 64

    problems = _problems(*_forged(drafted, tmp_path, change_entry=other))
    assert any("computed with another extractor" in what for _, what in problems), problems


def test_a_forged_closest_pairs_figure_is_refused(drafted, tmp_path):
    from cxrbench.closest_pairs import figure_png

    copy, cache = _forged(drafted, tmp_path)
    figure = copy.parent / json.loads(copy.read_text())["closest_pairs"]
    figure.write_bytes(figure_png(np.zeros((10, 10), dtype=np.uint8)))
    problems = _problems(copy, cache)
    assert any("is not the figure" in what for _, what in problems), problems
