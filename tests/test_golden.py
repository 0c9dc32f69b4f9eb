"""This project's CI regression check: the controls' smoke results on this machine, against the golden files.

`.ci/regenerate-golden` made golden/smoke/<suite>__<generator>.json on a development machine. A fresh smoke run of
the controls here must pass `cxrbench check --direction any` against each: no Δ moved either way beyond the two
results' uncertainty, no verdict changed. A code change that moves the protocol's numbers (a new MONAI, a changed
resize, a refactor) fails here unless it remakes the golden files on purpose. With the pinned CPU kernels the Δs
come out bit-identical on every x86-64 machine tried; the check is statistical all the same, so that a machine
whose numbers drift within their uncertainty still passes (issue 17, item 4). The time it took is printed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrbench.cli import app
from cxrbench.registry import suite_tasks
from cxrbench.runner import run
from cxrbench.schemas import RunConfig, RunResult

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "smoke"
SUITE = "embedded"
CONTROLS = ["oracle", "noise", "classic_aug", "real_extra"]


def test_every_control_has_a_golden_file_stamped_with_its_versions():
    for generator in CONTROLS:
        golden = RunResult.model_validate_json((GOLDEN / f"{SUITE}__{generator}.json").read_text())
        assert golden.config.profile == "smoke" and golden.smoke_profile_version and golden.protocol_version
        assert golden.config.generators == [generator] and not golden.incomplete
        assert {"torch", "monai", "numpy"} <= set(golden.environment) and golden.cxrbench_version
        assert all(task.task.version for task in golden.tasks)


@pytest.mark.slow
def test_the_controls_smoke_run_passes_the_check_against_the_golden_files(tmp_path, capsys):
    started = time.perf_counter()
    config = RunConfig(tasks=suite_tasks(SUITE), generators=CONTROLS, profile="smoke")
    result = run(config, tmp_path / "cache", workers=os.cpu_count() or 1, show_progress=False)
    new = tmp_path / "new.json"
    new.write_text(result.model_dump_json())
    reports = {}
    for generator in CONTROLS:
        checked = CliRunner().invoke(app, ["check", str(new), str(GOLDEN / f"{SUITE}__{generator}.json"),
                                           "--generator", generator, "--direction", "any", "--format", "json"])
        assert checked.exit_code == 0, checked.output
        reports[generator] = json.loads(checked.output)
    identical = sum(row["identical"] for report in reports.values() for row in report["rows"])
    compared = sum(len(report["rows"]) for report in reports.values())
    with capsys.disabled():
        print(f"\ngolden smoke check: {len(CONTROLS)} controls, {compared} comparisons passed ({identical} "
              f"bit-identical) in {time.perf_counter() - started:.0f} s")
