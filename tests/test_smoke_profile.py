"""The smoke profile (`cxrbench run --profile smoke`), `--first-seed`, and the oracle's `noise_share` option."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrbench.cli import app
from cxrbench.errors import ConfigError
from cxrbench.plan import plan_tasks
from cxrbench.protocol import SMOKE_PROFILE_VERSION
from cxrbench.registry import generator_class, get_task, task_class
from cxrbench.schemas import RunConfig, RunResult
from tests.test_bad_inputs import _refused_in_one_line, tripwire  # noqa: F401 - tripwire: a fixture

runner = CliRunner()
ORACLE_ENTRY = Path(__file__).resolve().parents[1] / "submissions" / "oracle"
SMOKE = ["run", "-g", "oracle", "--profile", "smoke", "--cache-dir", "{tmp}/cache"]


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("args, expected", [
    (["--seeds", "3"], "--profile smoke fixes each task's regimes, seeds and ratios; drop --seeds"),
    (["--regimes", "full"], "drop --regimes"),
    (["--ratios", "2"], "drop --ratios"),
    (["--train-size", "30"], "drop --train-size"),
    (["--seeds", "3", "--ratios", "2"], "drop --seeds, --ratios"),
    (["--first-seed", "6999"], "--first-seed: the run's seeds 6999 to 7002 include 7001, which the protocol reserves"),
    (["--first-seed", "-1"], "invalid setting first_seed: Input should be greater than or equal to 0"),
    (["--first-seed", "1000001"], "invalid setting first_seed: Input should be less than or equal to 1000000"),
    (["--suite", "open"], "task covid_lung_seg has no smoke profile"),
], ids=["seeds", "regimes", "ratios", "train_size", "two_options", "reserved_seed", "negative_seed", "huge_seed",
        "task_without_smoke_profile"])
def test_bad_smoke_settings_fail_in_one_line(tripwire, args, expected):  # noqa: F811 - the fixture
    _refused_in_one_line([a.format(tmp=tripwire) for a in [*SMOKE, *args]], expected)


@pytest.mark.reliability("bad_input")
def test_an_unknown_profile_fails_in_one_line(tripwire):  # noqa: F811 - the fixture
    _refused_in_one_line(["run", "-g", "oracle", "--profile", "fast"], "Invalid value for '--profile'")


def test_the_smoke_plan_is_each_tasks_smoke_settings_from_the_first_seed():
    plans = plan_tasks(RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["oracle"], profile="smoke",
                                 first_seed=100))
    for plan in plans:
        smoke = task_class(plan.task.meta.name).smoke
        assert [plan.regime] == smoke.regimes
        assert plan.seeds == list(range(100, 100 + smoke.seeds))
        assert [arm.ratio for arm in plan.arms] == (smoke.ratios or plan.task.meta.default_ratios)
        assert [cell.seed for cell in plan.arms[0].cells] == plan.seeds


def test_a_smoke_cell_is_the_protocols_cell_of_its_regime_and_seed():
    """The smoke profile trains fewer cells of the protocol, never other ones: a protocol run's cache serves it."""
    smoke = plan_tasks(RunConfig(tasks=["phantom_seg"], generators=["oracle"], profile="smoke"))
    protocol = plan_tasks(RunConfig(tasks=["phantom_seg"], generators=["oracle"], regimes=["scarce"]))
    assert {c.key for c in smoke[0].cells()} < {c.key for c in protocol[0].cells()}


def oracle_result_file(path: Path, **config) -> Path:
    """A result of the oracle on phantom_cls with no tasks scored, run with `config`, written to `path`."""
    config = RunConfig(tasks=["phantom_cls"], generators=["oracle"], **config)
    result = RunResult(protocol_version="2", cxrbench_version="0", created=datetime.now(timezone.utc),
                       smoke_profile_version=SMOKE_PROFILE_VERSION if config.profile == "smoke" else None,
                       config=config, generators=[generator_class("oracle").meta], tasks=[], methods={},
                       environment={}, wall_seconds=1.0)
    path.write_text(result.model_dump_json())
    return path


def refused_submission(tmp_path: Path, expected: str, **config) -> None:
    """`cxrbench submit` of an oracle result run with `config` fails in one line, `<result path> <expected>`, and
    publishes nothing."""
    path = oracle_result_file(tmp_path / "result.json", **config)
    _refused_in_one_line(["submit", str(path), "--generator-yaml", str(ORACLE_ENTRY / "generator.yaml"),
                          "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "submissions")],
                         f"{path} {expected}")
    assert not (tmp_path / "submissions" / "oracle").exists()


def refused_entry(tmp_path: Path, **config) -> str:
    """What `cxrbench validate` says of the oracle's phantom_cls entry whose config claims `config` (it fails)."""
    entry = tmp_path / "oracle"
    entry.mkdir()
    shutil.copy(ORACLE_ENTRY / "generator.yaml", entry)
    task_file = json.loads((ORACLE_ENTRY / "embedded__phantom_cls__scarce.json").read_text())
    task_file["config"].update(config)
    (entry / "embedded__phantom_cls__scarce.json").write_text(json.dumps(task_file))
    result = runner.invoke(app, ["validate", str(entry)])
    assert result.exit_code == 2
    return result.output


@pytest.mark.reliability("bad_input")
def test_submit_refuses_a_smoke_result(tmp_path):
    refused_submission(tmp_path, "is a run of the smoke profile, a regression check for `cxrbench check`, not the "
                                 "protocol: submit a run without --profile", profile="smoke")


@pytest.mark.reliability("hostile_file")
def test_validate_refuses_an_entry_that_holds_a_smoke_run(tmp_path):
    assert "config.profile: is 'smoke'; an entry holds a run of the protocol (profile 'protocol')" in \
        refused_entry(tmp_path, profile="smoke")


def _generated(name: str, seed: int, **options) -> np.ndarray:
    """What generator `name` (fitted on the scarce regime) makes for 20 label conditions of phantom_cls."""
    task = get_task("phantom_cls")
    train = task.load(None, train_size=50).train
    generator = generator_class(name)(task.meta, **options)
    generator.fit(train, seed=0, workdir=Path("."))
    conditions = task.conditions(train, 20, seed=seed)
    return generator.checked_generate(conditions, seed=seed), conditions, generator


def test_the_oracles_noise_share_replaces_that_share_by_the_noise_controls_images():
    degraded, conditions, _ = _generated("oracle", 3, noise_share=0.5)
    oracle, _, _ = _generated("oracle", 3)
    _, _, noise = _generated("noise", 3)
    replaced = [i for i in range(20) if not np.array_equal(degraded[i], oracle[i])]
    assert len(replaced) == 10
    assert np.array_equal(degraded[replaced], noise.generate([conditions[i] for i in replaced], seed=3))
    assert np.array_equal(_generated("oracle", 3, noise_share=0.5)[0], degraded)  # one choice per seed
    other, _, _ = _generated("oracle", 4, noise_share=0.5)
    assert [i for i in range(20) if not np.array_equal(other[i], _generated("oracle", 4)[0][i])] != replaced


def test_a_zero_noise_share_is_the_plain_oracle():
    assert np.array_equal(_generated("oracle", 3, noise_share=0.0)[0], _generated("oracle", 3)[0])


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("share, expected", [
    (1.5, "generator option oracle.noise_share: Input should be less than or equal to 1, got 1.5"),
    (-0.1, "generator option oracle.noise_share: Input should be greater than or equal to 0, got -0.1"),
    ("half", "generator option oracle.noise_share: Input should be a valid number"),
])
def test_a_bad_noise_share_is_refused_in_one_line(share, expected):
    with pytest.raises(ConfigError) as refused:
        generator_class("oracle").checked_options({"noise_share": share})
    assert expected in str(refused.value)
