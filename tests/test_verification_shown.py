"""Friction 6: the verification level an entry gets is shown where a generator author looks: under the tables of
`cxrbench run` and `cxrbench report`, and by `cxrbench submit` for the entry it wrote, with what it means."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrbench.cli import app
from cxrbench.registry import generator_class, task_class

from .test_submissions import SUBMISSIONS, pytestmark  # noqa: F401 - the same skip

THIRD_PARTY = "mixaug"
ORACLE_FILE = SUBMISSIONS / "oracle" / "embedded__phantom_cls__scarce.json"
OPEN_FILE = SUBMISSIONS / "classic_aug" / "open__pneumonia_cls__scarce.json"


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_the_level_an_entry_would_get_follows_from_the_generator_and_the_task():
    from cxrbench.verification import expected_level

    oracle = generator_class("oracle").meta
    third_party = generator_class("classic_aug").meta.model_copy(update={"verified": False, "role": "generator"})
    assert expected_level(oracle, task_class("phantom_cls")) == "recomputed"
    assert expected_level(third_party, task_class("phantom_cls")) == "recomputed"  # it carries its images
    assert expected_level(third_party, task_class("pneumonia_cls")) == "spot-checked"  # images may not be published
    assert expected_level(oracle, task_class("chexpert_cls")) == "self-reported"  # CI holds no copy of the data


def _third_party(data: dict) -> dict:
    """A committed classic_aug task file as a third-party generator's: another name, not verified."""
    data = json.loads(json.dumps(data).replace('"classic_aug"', f'"{THIRD_PARTY}"'))
    data["verified"] = False
    data["generators"][0]["role"] = "generator"
    return data


def _stored_result(tmp_path: Path) -> Path:
    """A RunResult holding the committed oracle result on phantom_cls and a third-party one on pneumonia_cls."""
    oracle, other = json.loads(ORACLE_FILE.read_text()), _third_party(json.loads(OPEN_FILE.read_text()))
    meta = {**other["generators"][0], "verified": False}
    result = {"protocol_version": oracle["protocol_version"], "cxrbench_version": oracle["cxrbench_version"],
              "created": oracle["created"], "config": {**oracle["config"], "generators": ["oracle", THIRD_PARTY]},
              "generators": [oracle["generators"][0], meta], "tasks": [oracle["result"], other["result"]],
              "methods": {}, "environment": {}, "wall_seconds": 1.0}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    return path


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_report_shows_each_generators_level_and_what_it_means(tmp_path, fmt):
    result = CliRunner().invoke(app, ["report", str(_stored_result(tmp_path)), "--format", fmt])
    assert result.exit_code == 0, result.output
    output = _flat(result.output)
    assert f"verification if submitted: oracle recomputed; {THIRD_PARTY} spot-checked" in output
    assert "spot-checked: CI retrains real_only and the reference arms, but not the generator's own arm" in output
    assert "to be recomputed, add the generator's code to this repository by pull request" in output


def test_run_shows_the_level_under_its_tables(tmp_path, monkeypatch):
    """A tiny run of noise, its recipe cut to two steps: the line under the tables says its entry's level."""
    from cxrbench.tasks.embedded.tasks import PhantomClassification

    monkeypatch.setattr(PhantomClassification, "schedule", replace(PhantomClassification.schedule, steps=2))
    result = CliRunner().invoke(app, ["run", "--task", "phantom_cls", "--generator", "noise", "--train-size", "8",
                                      "--seeds", "2", "--ratios", "0.5", "--n-boot", "100", "--workers", "1",
                                      "--no-quality", "--cache-dir", str(tmp_path / "cache"), "--out",
                                      str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    output = _flat(result.output)
    assert "verification if submitted: noise recomputed (docs/verification.md)" in output
    assert "recomputed: CI retrains every arm of the entry, the generator's own included" in output


def test_submit_prints_the_level_of_each_file_it_wrote(tmp_path, monkeypatch):
    """`submit` itself is covered elsewhere (a protocol run takes minutes); here it publishes two committed files:
    the oracle's (recomputed) and a third-party file on an open-suite task (spot-checked: no carried images)."""
    import cxrbench.submit

    out = tmp_path / "submissions"
    written = [out / "oracle" / ORACLE_FILE.name, out / THIRD_PARTY / OPEN_FILE.name]

    def publish(result, card, cache, root):
        written[0].parent.mkdir(parents=True)
        shutil.copy(ORACLE_FILE, written[0])
        written[1].parent.mkdir(parents=True)
        written[1].write_text(json.dumps(_third_party(json.loads(OPEN_FILE.read_text()))))
        return written

    monkeypatch.setattr(cxrbench.submit, "submit", publish)
    result = CliRunner().invoke(app, ["submit", str(tmp_path / "run.json"), "--generator-yaml",
                                      str(tmp_path / "card.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    output = _flat(result.output)
    assert f"{written[0]} " in output and "valid, recomputed" in output
    assert f"{written[1]} " in output and "valid, spot-checked" in output
    assert "spot-checked: CI retrains real_only and the reference arms" in output
    assert "or submit it on a task whose images may be published (the embedded suite)" in output


def test_a_smoke_run_shows_no_level_since_it_is_never_submitted():
    from cxrbench.report import verification_notes
    from cxrbench.schemas import RunResult

    smoke = RunResult.model_validate_json((Path(__file__).parents[1] / "golden" / "smoke"
                                           / "embedded__oracle.json").read_text())
    assert verification_notes(smoke) == []
    as_protocol = smoke.model_copy(update={"config": smoke.config.model_copy(update={"profile": "protocol"})})
    assert verification_notes(as_protocol)[0].startswith("verification if submitted: oracle recomputed")
