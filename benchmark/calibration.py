"""Is the primary analysis calibrated? A/A false positives and coverage of a control's true effect.

Only a simulated task can answer this, because only there can the true effect be measured: every
seed's models are also scored on thousands of fresh patients from the same renderer
(`fresh_patients`), where test-set noise is negligible and the mean over many seeds is the truth.
From the same trainings:
- A/A: real_only's seeds in disjoint groups of `group_size`; every pair of groups is compared as if
  one were an arm. The share of pairs called different is the test's false-positive rate.
- Coverage: a control's seeds in the same groups, each group compared with real_only's group of the
  same seeds on the task's own test set; the share of intervals that hold the true Δ is the coverage.
Each training also stores its cell's predictions in the cache, so a later run reuses them.
"""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from .cache import Cache
from .cell import synthetic_set
from .errors import ConfigError
from .executor import die_with_parent
from .plan import Cell, TaskPlan, checked_config, plan_task
from .predictions import save_predictions
from .registry import get_task
from .samples import SampleSet, Splits
from .schemas import RunConfig
from .stats import Comparison, compare
from .task import Predictions
from .task_data import load_splits


class IntervalRates(BaseModel):
    primary: float
    t_seeds: float
    bootstrap_patients: float


class ControlCoverage(BaseModel):
    control: str
    true_delta: float
    intervals: int
    coverage: IntervalRates


class CalibrationResult(BaseModel):
    task: str
    regime: str
    seeds: int
    group_size: int
    fresh_test_images: int
    aa_comparisons: int
    aa_false_positive_rate: IntervalRates
    """Share of A/A comparisons whose interval excludes 0 (for the primary one: p < 0.05 two-sided, the verdict's
    test before correction)."""
    controls: list[ControlCoverage]


@lru_cache(maxsize=2)
def _fresh(task: str, n_patients: int) -> SampleSet:
    return get_task(task).fresh_patients(n_patients)


def _train(cell: Cell, cache_root: str, fresh_patients: int) -> tuple[Predictions, Predictions]:
    """One training of `cell`'s recipe: predictions on the task's splits (stored as the cell) and on fresh patients."""
    cache = Cache(Path(cache_root))
    splits = load_splits(cell.task, cell.data_root, cell.train_size, cache_root)
    train = splits.train
    if cell.has_synthetic:
        train = SampleSet.concat([train, synthetic_set(cell, cache, splits)])
    task = get_task(cell.task)
    model = task.train_model(train, seed=cell.seed, device=cell.device)
    own = task.predict(model, splits, device=cell.device)
    if not cache.is_complete("downstream", cell.key):
        with cache.writing("downstream", cell.key, {"task": cell.task, "generator": cell.generator,
                                                    "ratio": cell.ratio, "seed": cell.seed}) as out:
            save_predictions(out, own)
    fresh = Splits(splits.train, splits.val, _fresh(cell.task, fresh_patients))
    return own, task.predict(model, fresh, device=cell.device)


def calibrate(task_name: str, regime: str, controls: list[str], *, seeds: int, group_size: int, cache_root: Path,
              workers: int, fresh_patients: int = 4000, n_boot: int = 2000) -> CalibrationResult:
    task = get_task(task_name)
    try:
        task.fresh_patients(0)  # a probe: simulated tasks draw no one, others raise
    except NotImplementedError:
        raise ConfigError(f"task {task_name} is not simulated: only the embedded suite can measure true effects") \
            from None
    if group_size < 2:
        raise ConfigError(f"--group-size {group_size}: a group needs at least 2 seeds for its interval")
    if seeds < 2 * group_size:
        raise ConfigError(f"{seeds} seeds make fewer than two groups of {group_size}")
    if fresh_patients < 1:
        raise ConfigError(f"--fresh-patients {fresh_patients}: the true Δ needs at least one new patient")
    config = checked_config(RunConfig(tasks=[task_name], generators=controls, seeds=seeds, regimes=[regime]))
    plan = plan_task(task_name, regime, task.meta.regimes[regime], config, cache_root)
    arms = {plan.baseline.generator: plan.baseline.cells, **{arm.generator: arm.cells for arm in plan.arms}}
    cells = [cell for arm_cells in arms.values() for cell in arm_cells]
    jobs = (cells, [str(cache_root)] * len(cells), [fresh_patients] * len(cells))
    if workers <= 1:
        outputs = list(map(_train, *jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=die_with_parent) as pool:
            outputs = list(pool.map(_train, *jobs))
    by_cell = dict(zip((cell.key for cell in cells), outputs, strict=True))
    return _rates(plan, arms, by_cell, group_size, fresh_patients, n_boot)


def _rates(plan: TaskPlan, arms: dict[str, list[Cell]], by_cell: dict, group_size: int, fresh_patients: int,
           n_boot: int) -> CalibrationResult:
    task, splits = plan.task, plan.splits
    fresh = Splits(splits.train, splits.val, _fresh(task.meta.name, fresh_patients))
    patients = splits.test.patient_ids.tolist()

    def metrics(name: str, which: int, on: Splits) -> list:
        return [task.case_metric(by_cell[cell.key][which], on).metric for cell in arms[name]]

    groups = [slice(start, start + group_size) for start in range(0, len(plan.seeds) - group_size + 1, group_size)]
    baseline = metrics("real_only", 0, splits)
    aa = [compare(baseline[a], baseline[b], patients, n_boot=n_boot, seed=0)
          for a, b in itertools.combinations(groups, 2)]
    baseline_fresh = np.array([m.value() for m in metrics("real_only", 1, fresh)])
    controls = []
    for name in (arm.generator for arm in plan.arms):
        truth = float(np.mean([m.value() for m in metrics(name, 1, fresh)] - baseline_fresh))
        own = metrics(name, 0, splits)
        found = [compare(own[g], baseline[g], patients, n_boot=n_boot, seed=0) for g in groups]
        controls.append(ControlCoverage(control=name, true_delta=truth, intervals=len(found),
                                        coverage=_covering(found, truth)))
    holding_zero = _covering(aa, 0.0)
    return CalibrationResult(
        task=task.meta.name, regime=plan.regime, seeds=len(plan.seeds), group_size=group_size,
        fresh_test_images=len(fresh.test), aa_comparisons=len(aa), controls=controls,
        aa_false_positive_rate=IntervalRates(**{k: 1 - v for k, v in holding_zero.model_dump().items()}))


def _covering(comparisons: list[Comparison], value: float) -> IntervalRates:
    """The share of each kind of interval that holds `value` (the primary one excludes 0 exactly when p < α)."""
    def share(bounds) -> float:
        return float(np.mean([low <= value <= high for low, high in map(bounds, comparisons)]))

    return IntervalRates(primary=share(lambda c: c.primary_ci), t_seeds=share(lambda c: c.t_ci),
                         bootstrap_patients=share(lambda c: c.boot_ci))
