"""`cxrbench check`: the regression rule on fabricated results, its outputs, and bad input in one line (exit 2)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from cxrbench.cli import app
from cxrbench.registry import task_class
from cxrbench.regression import difference
from cxrbench.schemas import ArmResult, ComparisonResult, GeneratorMeta, RunConfig, RunResult, TaskResult

runner = CliRunner()
ORACLE_ENTRY = Path(__file__).resolve().parents[1] / "submissions" / "oracle"
TASKS = ("phantom_cls", "phantom_seg")


def _comparison(delta: float, *, se: float = 0.01, df: float = 20.0, verdict: str | None = None,
                generator: str = "oracle", reference: str = "real_only") -> ComparisonResult:
    verdict = verdict or ("helps" if delta > 3 * se else "hurts" if delta < -3 * se else "no detectable difference")
    half = 2 * se
    return ComparisonResult(
        generator=generator, ratio=1.0, reference=reference, reference_mean=0.5, arm_mean=0.5 + delta, delta=delta,
        verdict=verdict, ci=(delta - half, delta + half), p=0.01, p_holm=0.02, p_bonferroni=0.02, mde=2.8 * se,
        df=df, se_seeds=se * 0.8, se_patients=se * 0.6, family_size=2, t_ci=(delta - half, delta + half),
        boot_ci=(delta - half, delta + half), p_t_greater=0.01, n_seeds=4)


def _arm(generator: str) -> ArmResult:
    return ArmResult(generator=generator, generator_revision="r", ratio=0.0 if generator == "real_only" else 1.0,
                     n_real=50, n_synthetic=50, seeds=[], mean=0.5, std=0.01)


def _result(comparisons: dict[str, list[ComparisonResult]], *, profile: str = "smoke", protocol: str = "2",
            task_version: str | None = None, label_conditions: str = "multi") -> RunResult:
    """A smoke RunResult with the given comparisons per task (scarce regime)."""
    tasks = []
    for name, compared in comparisons.items():
        meta = task_class(name).meta
        if task_version:
            meta = meta.model_copy(update={"version": task_version})
        tasks.append(TaskResult(task=meta, regime="scarce", n_train_real=50, n_val=100, n_test=100,
                                n_test_patients=60, baseline=_arm("real_only"),
                                arms=[_arm(g) for g in sorted({c.generator for c in compared})],
                                comparisons=compared))
    generators = sorted({c.generator for compared in comparisons.values() for c in compared})
    return RunResult(protocol_version=protocol, smoke_profile_version="1" if profile == "smoke" else None,
                     cxrbench_version="0", created=datetime.now(timezone.utc),
                     config=RunConfig(tasks=list(comparisons), generators=generators, profile=profile,
                                      label_conditions=label_conditions),
                     generators=[GeneratorMeta(name=g, version="1", role="control", description="-",
                                               conditioning=["label"]) for g in generators],
                     tasks=tasks, methods={}, environment={}, wall_seconds=1.0)


def _write(path: Path, result: RunResult) -> Path:
    path.write_text(result.model_dump_json())
    return path


def _both(tmp_path: Path, new: dict, base: dict, **stamps) -> tuple[str, str]:
    new_stamps = {k.removeprefix("new_"): v for k, v in stamps.items() if k.startswith("new_")}
    return (str(_write(tmp_path / "new.json", _result(new, **new_stamps))),
            str(_write(tmp_path / "base.json", _result(base))))


def _check(*args: str):
    return runner.invoke(app, ["check", *args])


def _json_check(*args: str) -> tuple[int, dict]:
    result = _check(*args, "--format", "json")
    return result.exit_code, json.loads(result.output)


def _per_task(cls: float, seg: float, **kwargs) -> dict[str, list[ComparisonResult]]:
    return {"phantom_cls": [_comparison(cls, **kwargs)], "phantom_seg": [_comparison(seg, **kwargs)]}


def test_the_same_result_passes_and_says_the_deltas_are_bit_identical(tmp_path):
    new, base = _both(tmp_path, _per_task(0.065, 0.134), _per_task(0.065, 0.134))
    code, report = _json_check(new, base)
    assert code == 0 and report["passed"]
    assert [(r["status"], r["identical"], r["diff"], r["p"]) for r in report["rows"]] == [("ok", True, 0.0, 0.5)] * 2


def test_a_drop_within_the_two_results_uncertainty_passes(tmp_path):
    new, base = _both(tmp_path, _per_task(0.055, 0.120), _per_task(0.065, 0.134))
    code, report = _json_check(new, base)
    assert code == 0, report
    assert [r["identical"] for r in report["rows"]] == [False, False]


def test_a_drop_beyond_the_uncertainty_is_a_regression(tmp_path):
    new, base = _both(tmp_path, _per_task(0.065, 0.060), _per_task(0.065, 0.134))
    result = _check(new, base)
    assert result.exit_code == 1, result.output
    assert "regressed" in result.output and "FAILED: 1 ok, 1 regressed" in result.output


def test_holm_corrects_over_the_checks_comparisons(tmp_path):
    """Each drop alone has a one-sided p of about 0.04 (< 0.05); over two comparisons Holm keeps both above 0.05."""
    drop = -stats.t.ppf(0.04, 40) * 0.01 * math.sqrt(2)  # two sides of df 20 and equal variance: df 40
    new, base = _both(tmp_path, _per_task(0.5 - drop, 0.5 - drop, df=20.0, verdict="helps"),
                      _per_task(0.5, 0.5, df=20.0, verdict="helps"))
    code, report = _json_check(new, base)
    assert [round(r["p"], 3) for r in report["rows"]] == [0.04, 0.04]
    assert code == 0 and [round(r["p_holm"], 3) for r in report["rows"]] == [0.08, 0.08]


def test_a_verdict_flip_from_helps_is_a_regression_even_within_the_uncertainty(tmp_path):
    new = _per_task(0.060, 0.134)
    new["phantom_cls"] = [_comparison(0.060, verdict="no detectable difference")]
    new_path, base = _both(tmp_path, new, _per_task(0.065, 0.134))
    code, report = _json_check(new_path, base)
    assert code == 1
    assert report["rows"][0]["status"] == "regressed"
    assert report["rows"][0]["note"] == "verdict helps → no detectable difference"


def test_direction_any_fails_on_a_gain_that_worse_lets_pass(tmp_path):
    new, base = _both(tmp_path, _per_task(0.065, 0.200), _per_task(0.065, 0.134))
    assert _check(new, base).exit_code == 0
    code, report = _json_check(new, base, "--direction", "any")
    assert code == 1 and report["rows"][1]["status"] == "changed"


def test_direction_any_fails_on_any_verdict_change(tmp_path):
    new = _per_task(0.0, 0.134)
    new["phantom_cls"] = [_comparison(0.0, verdict="hurts")]
    new_path, base = _both(tmp_path, new, _per_task(0.0, 0.134, ))
    assert _check(new_path, base).exit_code == 0  # no detectable difference -> hurts: not a fall from helps
    code, report = _json_check(new_path, base, "--direction", "any")
    assert code == 1 and report["rows"][0]["note"] == "verdict no detectable difference → hurts"


def test_a_comparison_missing_on_one_side_fails_unless_allowed(tmp_path):
    new, base = _both(tmp_path, {"phantom_cls": [_comparison(0.065)]}, _per_task(0.065, 0.134))
    code, report = _json_check(new, base)
    assert code == 1 and report["rows"][1]["status"] == "missing" and report["rows"][1]["note"] == "missing in new"
    assert _check(new, base, "--allow-missing").exit_code == 0


@pytest.mark.parametrize("stamp, note", [
    ({"new_task_version": "3"}, "task version 3 vs 2"),
    ({"new_protocol": "3"}, "protocol 3 vs 2"),
    ({"new_profile": "protocol"}, "profile protocol vs smoke 1"),
    ({"new_label_conditions": "single"}, "conditions single-disease label conditions, masks randomly transformed vs "
                                         "multi-label label conditions, masks randomly transformed"),
])
def test_a_comparison_under_another_version_or_profile_is_not_comparable(tmp_path, stamp, note):
    new, base = _both(tmp_path, _per_task(0.065, 0.134), _per_task(0.065, 0.134), **stamp)
    code, report = _json_check(new, base)
    assert code == 1 and {(r["status"], r["note"]) for r in report["rows"]} == {("not comparable", note)}
    assert "nothing could be compared" in report["summary"]
    assert _check(new, base, "--allow-missing").exit_code == 1  # still nothing compared


def test_generators_are_chosen_by_name_and_compared_with_another(tmp_path):
    both = {"phantom_cls": [_comparison(0.065), _comparison(0.0, generator="noise")]}
    path = str(_write(tmp_path / "both.json", _result(both)))
    code, report = _json_check(path, path, "--generator", "noise")
    assert code == 0 and report["generator"] == report["baseline_generator"] == "noise"
    code, report = _json_check(path, path, "--generator", "noise", "--baseline-generator", "oracle")
    assert code == 1 and report["rows"][0]["status"] == "regressed"


def test_the_markdown_and_the_table_show_every_comparison(tmp_path):
    new, base = _both(tmp_path, _per_task(0.065, 0.060), _per_task(0.065, 0.134))
    markdown = _check(new, base, "--format", "markdown").output
    assert markdown.count("\n| phantom_") == 2 and "| helps → helps |" in markdown
    assert "**FAILED: 1 ok, 1 regressed**" in markdown
    table = _check(new, base).output
    assert "phantom_seg" in table and "+0.134" in table and "+0.060" in table


def test_a_submission_entry_checks_against_itself(tmp_path):
    code, report = _json_check(str(ORACLE_ENTRY), str(ORACLE_ENTRY / "embedded__phantom_cls__scarce.json"),
                               "--allow-missing")
    assert code == 0
    compared = [r for r in report["rows"] if r["status"] == "ok"]
    assert len(compared) == 1 and compared[0]["identical"] and len(report["rows"]) == 4


def test_the_difference_is_welch_satterthwaite_of_the_two_sides():
    new, base = _comparison(0.0, se=0.02, df=5.0), _comparison(0.05, se=0.01, df=30.0)
    tested = difference(new, base, "worse")
    v_new, v_base = 0.02**2, 0.01**2
    assert tested.se == pytest.approx(math.sqrt(v_new + v_base))
    assert tested.df == pytest.approx((v_new + v_base) ** 2 / (v_new**2 / 5 + v_base**2 / 30))
    assert tested.p == pytest.approx(stats.t.cdf(-0.05 / tested.se, tested.df))
    assert difference(new, base, "any").p == pytest.approx(2 * tested.p)


def _bad(name: str, files: dict[str, str | bytes], args: list[str], expected: str):
    return pytest.param(files, args, expected, id=name)


GOOD = "good.json"
BAD_INPUTS = [
    _bad("no_such_file", {}, ["{tmp}/absent.json", GOOD], "{tmp}/absent.json: no such file or folder"),
    _bad("not_json", {"x.json": "not json"}, ["{tmp}/x.json", GOOD], "{tmp}/x.json is not a cxrbench result or "
                                                                      "task file: Expecting value"),
    _bad("not_utf8", {"x.json": b"\xff\xfe"}, ["{tmp}/x.json", GOOD], "{tmp}/x.json is not a cxrbench result"),
    _bad("json_list", {"x.json": "[1, 2]"}, [GOOD, "{tmp}/x.json"], "{tmp}/x.json is not a cxrbench result or task "
                                                                     "file: expected a JSON object"),
    _bad("old_schema", {"x.json": '{"schema_version": "1", "tasks": []}'}, ["{tmp}/x.json", GOOD],
         "{tmp}/x.json is a result of schema '1' (this cxrbench reads schema '2')"),
    _bad("result_bad_field", {"x.json": '{"schema_version": "2", "tasks": []}'}, ["{tmp}/x.json", GOOD],
         "{tmp}/x.json is not a cxrbench result: field protocol_version: Field required"),
    _bad("task_file_bad_field", {"x.json": '{"generator": "oracle"}'}, ["{tmp}/x.json", GOOD],
         "{tmp}/x.json is not a cxrbench task file: schema_version: missing; add schema_version: '3'"),
    _bad("folder_without_task_files", {"empty/README": "-"}, [GOOD, "{tmp}/empty"],
         "{tmp}/empty is a folder without task files"),
    _bad("unknown_generator", {}, [GOOD, GOOD, "--generator", "mixup"],
         "--generator mixup: {tmp}/good.json holds no comparison of it (it holds noise, oracle)"),
    _bad("several_generators", {}, [GOOD, GOOD], "{tmp}/good.json holds the comparisons of 2 generators (noise, "
                                                 "oracle): pick one with --generator"),
    _bad("unknown_baseline_generator", {}, [GOOD, GOOD, "--generator", "oracle", "--baseline-generator", "ldm"],
         "--baseline-generator ldm: {tmp}/good.json holds no comparison of it"),
    _bad("unknown_direction", {}, [GOOD, GOOD, "--direction", "better"], "Invalid value for '--direction'"),
]


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("files, args, expected", BAD_INPUTS)
def test_bad_input_fails_in_one_line(tmp_path, files, args, expected):
    both = {"phantom_cls": [_comparison(0.065), _comparison(0.0, generator="noise")]}
    _write(tmp_path / GOOD, _result(both))
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    result = _check(*[str(tmp_path / a) if a == GOOD else a.format(tmp=tmp_path) for a in args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert expected.format(tmp=tmp_path) in lines[0], lines[0]


@pytest.mark.reliability("hostile_file")
@pytest.mark.parametrize("kind", ["symlink", "fifo", "deep_json"])
def test_a_crafted_baseline_is_refused_in_one_line(tmp_path, kind):
    import os

    good = _write(tmp_path / GOOD, _result(_per_task(0.065, 0.134)))
    crafted = tmp_path / "crafted.json"
    if kind == "symlink":
        crafted.symlink_to("/etc/passwd")
    elif kind == "fifo":
        os.mkfifo(crafted)
    else:
        crafted.write_text("[" * 100_000 + "]" * 100_000)
    result = _check(str(good), str(crafted))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"{crafted} is not a cxrbench result or task file: " in lines[0]
