"""The card: `cxrbench card init`'s template, and schema-version errors that say what to write."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cxrbench.errors import SubmissionError
from cxrbench.protocol import SUBMISSION_SCHEMA_VERSION
from cxrbench.submission import GeneratorCard, load_card


def _cxrbench(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxrbench", *args], capture_output=True, text=True, cwd=cwd)


def test_card_init_writes_every_field_the_card_needs(tmp_path):
    done = _cxrbench("card", "init", "oracle", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "submissions" / "oracle" / "generator.yaml"
    card = yaml.safe_load(path.read_text())
    assert set(card) == set(GeneratorCard.model_fields)
    assert card["schema_version"] == SUBMISSION_SCHEMA_VERSION and card["conditioning"] == ["label", "mask"]
    lines = path.read_text().splitlines()
    for field in GeneratorCard.model_fields:  # every field comes with a comment saying what it is
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{field}:"))
        assert lines[at - 1].startswith("# ")
    with pytest.raises(SubmissionError) as caught:  # what only the author knows is left to fill in
        load_card(path)
    assert {field for _, field, _ in caught.value.problems} == {"authors", "hardware"}
    path.write_text(path.read_text().replace("authors: []", "authors: [Ada]").replace("hardware: ''", "hardware: cpu"))
    assert load_card(path).name == "oracle"


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("args, expected", [
    (["card", "init", "oracle", "--out", "taken.yaml"],
     "error: taken.yaml exists; cxrbench card init does not overwrite it (edit it, or choose another --out)"),
    (["card", "init", "My GAN"], "error: generator name 'My GAN': a card's name is lower-case letters"),
], ids=["existing file", "bad name"])
def test_card_init_refuses(tmp_path, args, expected):
    (tmp_path / "taken.yaml").write_text("mine\n")
    done = _cxrbench(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(expected) and "Traceback" not in done.stderr
    assert (tmp_path / "taken.yaml").read_text() == "mine\n" and not (tmp_path / "submissions").exists()


_CARD = """\
name: oracle
revision: '1'
authors: [Ada]
code: generators/oracle.py
licence: Apache-2.0
conditioning: [label]
training_data: [{dataset: embedded, split: train}]
hardware: cpu
"""


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("version, expected", [
    (None, "schema_version: missing; add schema_version: '3'"),
    ("0", "schema_version: '0' is not a schema version (known: '1', '2', '3'); write schema_version: '3'"),
    ("three", "schema_version: 'three' is not a schema version (known: '1', '2', '3'); write schema_version: '3'"),
    ("4", "schema_version: '4' is newer than this cxrbench reads (it reads up to '3'); upgrade cxrbench"),
], ids=["missing", "older than any", "not a version", "newer"])
def test_schema_version_error_says_what_to_write(tmp_path, version, expected):
    path = tmp_path / "generator.yaml"
    path.write_text(_CARD if version is None else f"schema_version: '{version}'\n{_CARD}")
    with pytest.raises(SubmissionError) as caught:
        load_card(path)
    assert str(caught.value).splitlines()[1:] == [f"{path}: {expected}"]
    if version != "4":
        assert "upgrade cxrbench" not in str(caught.value)
