"""Hostile submission files are refused, not followed: links, devices, bombs, forged counts, non-finite numbers,
Markdown in captions; one bad entry is one bad entry, never a blank board."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrbench.errors import SubmissionError
from cxrbench.leaderboard.table import read_board
from cxrbench.submission import decode_predictions, encode_predictions
from cxrbench.validate import validate

from .test_submissions import (  # noqa: F401 - pytestmark: the same skip
    CLS_FILE,
    ENTRY,
    REPO,
    SUBMISSIONS,
    copy_entry_without_quality,
    pytestmark,
)


@pytest.fixture()
def entry(tmp_path) -> Path:
    return copy_entry_without_quality(SUBMISSIONS / ENTRY, tmp_path / "board" / ENTRY)


def _outside(tmp_path: Path) -> Path:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("name: host-secret-line\n")
    return secret


def _link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def _edit(folder: Path, change) -> None:
    path = folder / CLS_FILE
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _nan_predictions(data: dict) -> None:
    arrays = decode_predictions(data["predictions"])
    key = next(k for k in arrays if k.startswith("oracle|1|0|test_prob"))
    arrays[key] = np.where(np.arange(arrays[key].size).reshape(arrays[key].shape) % 7 == 0, np.nan, arrays[key])
    data["predictions"] = encode_predictions(arrays)


HOSTILE = {
    "task file linked to /dev/zero": (lambda f, t: _link(f / CLS_FILE, Path("/dev/zero")),
                                      f"{CLS_FILE}: is a symbolic link"),
    "card linked to a host file": (lambda f, t: _link(f / "generator.yaml", _outside(t)),
                                   "generator.yaml: is a symbolic link"),
    "gallery image linked outside": (lambda f, t: _link(next((f / "gallery").iterdir()), _outside(t)),
                                     "is a symbolic link"),
    "a FIFO in the entry": (lambda f, t: os.mkfifo(f / "pipe"), "pipe: is not a regular file"),
    "YAML alias bomb": (lambda f, t: (f / "generator.yaml").write_text(
        'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nname: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'), "aliases are not allowed"),
    "200,000-deep JSON": (lambda f, t: (f / CLS_FILE).write_text("[" * 200_000 + "]" * 200_000),
                          "nested too deeply"),
    "a task file over the size limit": (lambda f, t: (f / CLS_FILE).write_text(" " * 1_000_001 + "{}"),
                                        "is larger than 1,000,000 bytes"),
    "binary card": (lambda f, t: (f / "generator.yaml").write_bytes(b"\xff\xfe\x00name"), "is not UTF-8 text"),
    "NaN test probabilities": (lambda f, t: _edit(f, _nan_predictions), "non-finite values"),
    "forged synthetic count": (lambda f, t: _edit(f, lambda d: d["result"]["arms"][0].update(n_synthetic=5000)),
                               "n_synthetic: is 5000; the protocol adds round(ratio x n_real) = 50"),
    "a date in the future": (lambda f, t: _edit(f, lambda d: d.update(created="2286-11-20T17:46:40Z")),
                             "created: Value error, is 2286-11-20T17:46:40+00:00, in the future"),
    "a date as a number": (lambda f, t: _edit(f, lambda d: d.update(created=1e10)),
                           "created: Value error, must be an ISO 8601 date and time"),
    "an unknown key in a comparison": (lambda f, t: _edit(f, lambda d: d["result"]["comparisons"][0].update(
        foo=1)), "result.comparisons.0.foo: Extra inputs are not permitted"),
    "an unknown key in a seed's score": (lambda f, t: _edit(f, lambda d: d["result"]["arms"][0]["seeds"][0].update(
        note="trust me")), "result.arms.0.seeds.0.note: Extra inputs are not permitted"),
    "a forged subgroup Δ": (lambda f, t: _edit(f, _forged_subgroup),
                           "result.comparisons[0].subgroups.attributes[0].groups[1].delta: is -0.2; recomputed from "
                           "the stored predictions"),
    "predictions that unpack to 80 MB": (lambda f, t: _edit(f, _inflated_predictions),
                                         "predictions: not a base64 npz archive (ValueError: unpacks to 80,151,008 "
                                         "bytes, more than the 64,000,000"),
}


def _forged_subgroup(data: dict) -> None:
    """The sentence a forger wants: the arm helps one sex and hurts the other."""
    group = data["result"]["comparisons"][0]["subgroups"]["attributes"][0]["groups"][1]
    group.update(delta=-0.2, verdict="hurts")


def _inflated_predictions(data: dict) -> None:
    """80 MB of zeros compress to a few kB: a small file that expands to more than any entry needs."""
    arrays = decode_predictions(data["predictions"])
    arrays["zeros"] = np.zeros(10_000_000, dtype=np.float64)
    data["predictions"] = encode_predictions(arrays)


@pytest.mark.reliability("hostile_file")
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_entry_is_refused_with_its_file_named(entry, tmp_path, case):
    make, expected = HOSTILE[case]
    make(entry, tmp_path)
    with pytest.raises(SubmissionError) as caught:
        validate([entry])
    message = str(caught.value)
    assert expected in message, message
    assert "host-secret-line" not in message  # a linked file is never read, so never echoed


def test_a_linked_entry_folder_is_refused(tmp_path):
    (tmp_path / "board").mkdir()
    (tmp_path / "board" / "elsewhere").symlink_to(SUBMISSIONS / ENTRY, target_is_directory=True)
    with pytest.raises(SubmissionError, match="elsewhere: is a symbolic link"):
        validate([tmp_path / "board"])


def test_one_bad_entry_leaves_the_rest_of_the_board_up(entry, tmp_path):
    broken = entry.parent / "noise"
    shutil.copytree(SUBMISSIONS / "noise", broken)
    (broken / "embedded__phantom_cls__full.json").write_text("[" * 200_000)
    renamed = entry.parent / "copycat"
    shutil.copytree(SUBMISSIONS / "classic_aug", renamed)  # its card says classic_aug: a duplicate name
    board = read_board(entry.parent)
    assert [e.card.name for e in board.entries] == ["oracle"]
    assert set(board.refused) == {"noise", "copycat"}
    assert "it must equal the folder name" in str(board.refused["copycat"])


def test_gallery_captions_are_shown_as_typed(entry, monkeypatch):
    """st.image renders captions as Markdown (an image link there would be fetched by every visitor's browser, a bare
    URL becomes a link even escaped): a condition is plain text under its image."""
    from streamlit.testing.v1 import AppTest

    path = entry / CLS_FILE
    data = json.loads(path.read_text())
    data["gallery"][0]["condition"] = "![t](http://127.0.0.1:8765/pixel.png?visitor=leak) [win](http://x)"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("CXRBENCH_SUBMISSIONS", str(entry.parent))
    at = AppTest.from_file(str(REPO / "leaderboard" / "app.py"), default_timeout=60).run()
    at.sidebar.radio(key="page").set_value("Generator").run()
    captions = [image.caption for element in at.get("image") for image in element.proto.imgs]
    assert not any("pixel" in c for c in captions) and not at.exception
    assert data["gallery"][0]["condition"] in [t.value for t in at.text]  # shown as typed, in plain text
