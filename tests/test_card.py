"""The card: `cxrbench card init`'s template, and schema-version errors that say what to write."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cxrbench.card_template import card_template
from cxrbench.errors import SubmissionError
from cxrbench.protocol import SUBMISSION_SCHEMA_VERSION, leaked_training_data
from cxrbench.registry import get_task
from cxrbench.schemas import DatasetRef, GeneratorMeta
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


@pytest.mark.parametrize("name, options, pretrained_on", [
    ("ldm_mask", "{preset: tiny, init: pretrained}", ["phantom_seg"]),
    ("ldm_text", "{preset: tiny, init: pretrained}", ["phantom_cls"]),
    ("ldm_mask", "{preset: tiny}", []),
], ids=["ldm_mask pretrained", "ldm_text pretrained", "from scratch"])
def test_card_init_declares_the_pretraining_pools_the_run_s_config_learns_from(tmp_path, name, options,
                                                                               pretrained_on):
    """Issue 18: under `init: pretrained` the card lists each served task's pool, a declaration the run and the
    submission checks accept (only a task's val or test split is refused, as the comment above it says)."""
    (tmp_path / "ldm.yaml").write_text(f"{name}: {options}\n")
    done = _cxrbench("card", "init", name, "--generator-config", "ldm.yaml", "--out", "card.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "card.yaml").read_text()
    declared = [DatasetRef(**ref) for ref in yaml.safe_load(text)["training_data"]]
    assert declared == [DatasetRef(dataset="embedded", split="train"),
                        *(DatasetRef(dataset=task, split="pretraining") for task in pretrained_on)]
    for task in ("phantom_cls", "phantom_seg"):
        assert leaked_training_data(declared, get_task(task).meta, None) == []
    assert "declaring its val or test split (or any other) is\n# refused" in text


def test_the_card_lists_what_the_generators_metadata_says_it_pretrained_on():
    meta = GeneratorMeta(name="chexgan", version="1", role="generator", conditioning=["label"], description="A GAN.",
                         trained_on=[DatasetRef(dataset="mimic_cxr", split="train"),
                                     DatasetRef(dataset="phantom_seg", split="pretraining")])
    card = yaml.safe_load(card_template("chexgan", meta, trainable=True, pretrained_on=["phantom_seg"]))
    assert card["training_data"] == [{"dataset": "mimic_cxr", "split": "train"},
                                     {"dataset": "phantom_seg", "split": "pretraining"},
                                     {"dataset": "embedded", "split": "train"}]


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("config, expected", [
    ("ldm_mask: {init: sometimes}\n",
     "error: generator option ldm_mask.init: Input should be 'scratch' or 'pretrained', got 'sometimes'"),
    ("- ldm_mask\n", "error: generator config ldm.yaml must map generator names to option mappings"),
], ids=["bad option", "not a mapping"])
def test_card_init_refuses_a_bad_generator_config_in_one_line(tmp_path, config, expected):
    (tmp_path / "ldm.yaml").write_text(config)
    done = _cxrbench("card", "init", "ldm_mask", "--generator-config", "ldm.yaml", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == expected
    assert not (tmp_path / "submissions").exists()
