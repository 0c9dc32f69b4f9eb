"""`cxrbench plan`: the cells a run would compute, what the cache holds, and a price from the measured table.

The counts are checked against what a real run computed (the shared tiny run), the cache state before and
after it, the arithmetic against a table given here, the committed table against what it must cover, and the
command against a tripwire: it trains nothing and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cxrbench.cell
import cxrbench.executor
import cxrbench.runner
from cxrbench.cache import Cache
from cxrbench.cli import app
from cxrbench.cost import CellCost, CostTable, SamplingCost, StepCost, cell_price, cell_work
from cxrbench.forecast import DATA_ROOT_ENV, forecast
from cxrbench.generator import Generator
from cxrbench.registry import get_task, suite_tasks, task_names
from cxrbench.task import Task

runner = CliRunner()
MEASURED = {"command": "a test", "machine": "none: figures made up to check the arithmetic", "date": "2026-12-02"}


@pytest.fixture
def tripwire(monkeypatch, tmp_path):
    """Training, fitting, sampling or opening the cache for writing fails the test at once."""
    def work(*args, **kwargs):
        raise AssertionError("plan started work")

    for owner, name in [(Task, "train_and_predict"), (Generator, "fit"), (Generator, "checked_generate"),
                        (cxrbench.executor, "execute"), (cxrbench.cell, "run_cell"), (Cache, "__init__")]:
        monkeypatch.setattr(owner, name, work)
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_plan_counts_what_the_run_computed_and_then_finds_it_cached(tiny_run, tripwire):
    config, cache, result = tiny_run
    before = _tree(cache)
    cold = forecast(config, tripwire / "empty")
    warm = forecast(config, cache)
    scored = {(t.task.name, t.regime, arm.generator, arm.ratio): (len(arm.seeds), arm.n_synthetic)
              for t in result.tasks for arm in [t.baseline, *t.arms]}
    for found in (cold, warm):
        assert {(a.task, a.regime, a.generator, a.ratio): (a.cells, a.n_synthetic) for a in found.arms} == scored
    assert cold.cached == 0 and cold.to_compute == cold.cells == sum(n for n, _ in scored.values())
    assert warm.cached == warm.cells and warm.to_compute == 0  # the keys are the run's
    assert all(arm.synthetic_sets == 0 for arm in warm.arms)
    assert sum(arm.synthetic_sets for arm in cold.arms) == sum(arm.cells for arm in cold.arms if arm.n_synthetic)
    assert _tree(cache) == before and not (tripwire / "empty").exists()


def test_the_price_is_the_tables_figures_times_the_work(tiny_run, tripwire):
    config, _, _ = tiny_run
    cell = CellCost(task="phantom_cls", regime="n24", device="cpu", cpu_seconds=100.0, wall_seconds=150.0,
                    what="made up", **MEASURED)
    sampling = SamplingCost(generator="noise", task="phantom_cls", device="cpu", cpu_seconds_per_image=0.5,
                            what="made up", **MEASURED)
    found = forecast(config, tripwire / "empty", CostTable(cells=[cell], sampling=[sampling]))
    noise = next(a for a in found.arms if (a.task, a.generator) == ("phantom_cls", "noise"))
    assert noise.n_synthetic == 12 and noise.cells == 2
    assert noise.cells_seconds == 2 * 100.0 and noise.sampling_total_seconds == pytest.approx(2 * 12 * 0.5)
    oracle = next(a for a in found.arms if (a.task, a.generator) == ("phantom_cls", "oracle"))
    assert oracle.cells_seconds == 200.0 and oracle.sampling_total_seconds is None  # not in this table
    assert all(a.cells_seconds is None for a in found.arms if a.task == "phantom_seg")
    assert "oracle's synthetic sets on phantom_cls" in found.unpriced and "cells of phantom_seg n24" in found.unpriced
    assert found.priced_seconds == pytest.approx(3 * 200.0 + 12.0)  # real_only, noise, oracle cells; noise's sets


def test_without_a_measured_cell_the_price_is_per_image_figures_times_the_recipes_work():
    task = get_task("chexpert_cls")
    step = StepCost(task="chexpert_cls", device="cpu", train_seconds_per_image=0.5, infer_seconds_per_image=0.1,
                    what="made up", **MEASURED)
    work = cell_work("chexpert_cls", "full", task.recipe(), n_train=1000, n_val=200, n_test=300)
    schedule = task.recipe()["schedule"]
    expected = schedule["steps"] * schedule["batch_size"] * 0.5 + (1000 + 200 + 300) * 0.1  # BatchNorm: 1000 more
    assert cell_price(CostTable(steps=[step]), work, "cpu").seconds == pytest.approx(expected)
    assert cell_price(CostTable(steps=[step]), work, "cuda") is None


def test_the_committed_table_is_measured_for_every_task_on_the_cpu():
    table = CostTable.read()
    assert {s.task for s in table.steps if s.device == "cpu"} == set(task_names())
    assert {d.task for d in table.datasets} == set(suite_tasks("paper"))
    local = {(t, r) for suite in ("embedded", "open") for t in suite_tasks(suite) for r in get_task(t).meta.regimes}
    assert {(c.task, c.regime) for c in table.cells if c.device == "cpu"} == local
    for entry in [*table.cells, *table.steps, *table.sampling, *table.datasets]:
        assert entry.command.startswith("measure_costs.py") and entry.machine and entry.date
    assert not [e for e in [*table.cells, *table.steps, *table.sampling] if e.device != "cpu"]  # no GPU measured


def test_the_paper_suite_is_planned_from_its_nominal_sizes_without_its_data(tripwire):
    result = runner.invoke(app, ["plan", "--suite", "paper", "-g", "classic_aug", "--cache-dir", str(tripwire / "c"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert sum(arm["cells"] for arm in found["arms"]) == 4 * 2 * 2 * 5  # tasks x regimes x arms x seeds
    assert all(arm["cached"] is None for arm in found["arms"])
    chexpert = [a for a in found["arms"] if a["task"] == "chexpert_cls" and a["generator"] == "real_only"]
    assert all(a["cell_seconds"] > 3600 for a in chexpert)  # DenseNet-121 at 224 px: hours per cell on a CPU
    assert any("chexpert_cls: no data at <data root>/chexpert" in note for note in found["notes"])
    assert not (tripwire / "c").exists()


def test_the_table_shows_each_arm_and_says_what_is_not_measured(tripwire):
    result = runner.invoke(app, ["plan", "--task", "rsna_cls", "-g", "classic_aug", "--regimes", "scarce",
                                 "--device", "cuda", "--cache-dir", str(tripwire / "c")])
    assert result.exit_code == 0, result.output
    assert "rsna_cls" in result.output and "classic_aug" in result.output and "unknown" in result.output
    assert "not measured on cuda" in result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["-g", "oracle", "--task", "phantom_cls", "--regimes", "huge"], "has no regime 'huge'"),
    (["-g", "oracle", "--task", "pneumonia_cls", "--data-root", "nowhere"], "--data-root nowhere is not a folder"),
])
def test_bad_input_is_one_line(tripwire, args, expected):
    result = runner.invoke(app, ["plan", *args, "--cache-dir", str(tripwire / "c")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and expected in lines[0], result.output


def test_the_data_root_variable_is_the_real_tasks_own():
    from cxrbench.tasks.real.base import DATA_ROOT_ENV as TASKS_VARIABLE

    assert DATA_ROOT_ENV == TASKS_VARIABLE == "CXRBENCH_DATA_ROOT"
