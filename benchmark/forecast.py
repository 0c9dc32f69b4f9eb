"""A run's cost before it runs: the cells it would compute, which the cache holds, the fits it needs, the price.

The cells are `plan_tasks`'s, keyed as the run keys them, and the cache is read without a lock or a removal
(`holds_complete`), so a forecast writes nothing and trains nothing. A real task whose data is not on this
machine (the paper suite before a user has registered for it) is forecast from its nominal split sizes, counted
in the dataset's published metadata (`CostTable.datasets`): the cells and their price are known from those, the
cache state is not (the keys hash the data), and the forecast says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, computed_field

from .cache import holds_complete
from .cost import CellWork, CostTable, DatasetSize, Price, cell_price, cell_work, sampling_price
from .plan import TaskPlan, checked_config, plan_task
from .protocol import BASELINE, incompatibility, profiled_meta, run_regimes, run_seeds, serves_regime, synthetic_count
from .registry import generator_class, get_task
from .schemas import RunConfig
from .task import Task

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "CXRBENCH_DATA_ROOT"
"""The real tasks' default data root (tasks.real.base reads the same variable; a test holds the two equal)."""


class ArmForecast(BaseModel):
    task: str
    regime: str
    generator: str
    ratio: float
    n_synthetic: int
    cells: int
    cached: int | None
    """Cells already complete in the cache; None where the task's data is absent, so the keys are unknown."""
    synthetic_sets: int
    """Synthetic sets the missing cells need made (a set the cache holds is not made again)."""
    cell_seconds: float | None
    cell_basis: str
    sampling_seconds: float | None
    """CPU seconds of one synthetic set; None where not measured (0 for real_only, which makes none)."""

    @computed_field
    @property
    def to_compute(self) -> int:
        return self.cells - (self.cached or 0)

    @computed_field
    @property
    def cells_seconds(self) -> float | None:
        """CPU seconds of the missing cells' training and prediction; None where not measured."""
        return None if self.cell_seconds is None else self.to_compute * self.cell_seconds

    @computed_field
    @property
    def sampling_total_seconds(self) -> float | None:
        """CPU seconds of the synthetic sets to make; None where not measured."""
        if not self.synthetic_sets:
            return 0.0
        return None if self.sampling_seconds is None else self.synthetic_sets * self.sampling_seconds


class FitForecast(BaseModel):
    task: str
    regime: str
    generator: str
    cached: bool | None


class Forecast(BaseModel):
    device: str
    arms: list[ArmForecast]
    fits: list[FitForecast]
    notes: list[str]

    @computed_field
    @property
    def cells(self) -> int:
        return sum(arm.cells for arm in self.arms)

    @computed_field
    @property
    def cached(self) -> int:
        return sum(arm.cached or 0 for arm in self.arms)

    @computed_field
    @property
    def to_compute(self) -> int:
        return sum(arm.to_compute for arm in self.arms)

    @computed_field
    @property
    def priced_seconds(self) -> float:
        """CPU seconds of what is missing, where measured (see `unpriced`)."""
        return sum(part for arm in self.arms for part in (arm.cells_seconds, arm.sampling_total_seconds)
                   if part is not None)

    @computed_field
    @property
    def unpriced(self) -> list[str]:
        """What the estimate leaves out for want of a measured figure on the device."""
        missing = [what for arm in self.arms for what, seconds in (
            (f"cells of {arm.task} {arm.regime}", arm.cells_seconds if arm.to_compute else 0.0),
            (f"{arm.generator}'s synthetic sets on {arm.task}", arm.sampling_total_seconds)) if seconds is None]
        fits = [f"fit of {fit.generator} on {fit.task} {fit.regime}" for fit in self.fits if not fit.cached]
        return list(dict.fromkeys(missing)) + fits


def forecast(config: RunConfig, cache_root: Path, table: CostTable | None = None) -> Forecast:
    """What `cxrbench run` with `config` and `cache_root` would compute and cost on `config.device`."""
    table = table or CostTable.read()
    # Priced, not run: the device need not be on this machine (plan a GPU run from a laptop).
    config = checked_config(config.model_copy(update={"device": "cpu"})).model_copy(update={"device": config.device})
    arms: list[ArmForecast] = []
    fits: dict[str | tuple[str, str, str], FitForecast] = {}  # by fit key; by arm where the keys are unknown
    notes: list[str] = []
    for name in config.tasks:
        task = get_task(name)
        regimes = run_regimes(profiled_meta(task, config.profile), config.regimes, config.train_size)
        nominal = table.dataset(name) if _data_absent(task, config.data_root) else None
        if nominal is not None:
            notes.append(f"{name}: no data at {_dataset_place(task, config.data_root)}; split sizes from "
                         f"{nominal.source}; cache state unknown (the keys hash the data)")
        for regime, size in regimes.items():
            if nominal is not None:
                found = _nominal_arms(task, regime, size, nominal, config, table)
                arms += found
                fits |= {(name, regime, arm.generator): FitForecast(task=name, regime=regime,
                                                                    generator=arm.generator, cached=None)
                         for arm in found if generator_class(arm.generator).trainable}
                continue
            # No cache folder: the plan decodes the task's images itself rather than filling the pixel cache.
            plan = plan_task(name, regime, size, config, None)
            arms += _planned_arms(plan, cache_root, config.device, table)
            for arm in plan.arms:
                key = arm.cells[0].fit_key
                if key is not None:
                    fits[key] = FitForecast(task=name, regime=regime, generator=arm.generator,
                                            cached=holds_complete(cache_root, "fit", key))
    if config.quality:
        notes.append("the quality measurement (--quality: the feature encoder, the re-identification verifier, the "
                     "fidelity statistics) is not priced")
    return Forecast(device=config.device, arms=arms, fits=list(fits.values()), notes=notes)


def _data_root(given: Path | None) -> Path | None:
    """The data root a run would read: `--data-root`, else the environment variable, else none."""
    found = given or os.environ.get(DATA_ROOT_ENV)
    return Path(found).expanduser() if found else None


def _data_absent(task: Task, data_root: Path | None) -> bool:
    """A real task whose dataset folder is not under the data root (or no data root is given)."""
    root = _data_root(data_root)
    return task.folder is not None and (root is None or not (root / task.folder).is_dir())


def _dataset_place(task: Task, data_root: Path | None) -> str:
    root = _data_root(data_root)
    return f"{root / task.folder}" if root else f"<data root>/{task.folder} (no --data-root)"


def _planned_arms(plan: TaskPlan, cache_root: Path, device: str, table: CostTable) -> list[ArmForecast]:
    name, splits = plan.task.meta.name, plan.splits
    work = cell_work(name, plan.regime, plan.task.recipe(), n_train=len(splits.train), n_val=len(splits.val),
                     n_test=len(splits.test))
    forecasts = []
    for arm in [plan.baseline, *plan.arms]:
        missing = [c for c in arm.cells if not holds_complete(cache_root, "downstream", c.key)]
        sets = sum(c.has_synthetic and not holds_complete(cache_root, "synthetic", c.synthetic_key) for c in missing)
        n = arm.cells[0].n_synthetic
        forecasts.append(_arm(work, arm.generator, arm.ratio, n, len(arm.cells), len(arm.cells) - len(missing), sets,
                              device, table))
    return forecasts


def _nominal_arms(task: Task, regime: str, size: int | None, nominal: DatasetSize, config: RunConfig,
                  table: CostTable) -> list[ArmForecast]:
    """The arms `plan_task` would make, from the nominal sizes: every seed's cell and synthetic set to compute."""
    meta = profiled_meta(task, config.profile)
    seeds = len(run_seeds(meta, config.seeds, config.first_seed))
    n_train = nominal.train if size is None else min(size, nominal.train)
    work = cell_work(meta.name, regime, task.recipe(), n_train=n_train, n_val=nominal.val, n_test=nominal.test)
    arms = [_arm(work, BASELINE, 0.0, 0, seeds, None, 0, config.device, table)]
    for generator in config.generators:
        generator_meta = generator_class(generator).meta
        if generator == BASELINE or incompatibility(generator_meta, task.meta) or not serves_regime(generator_meta,
                                                                                                   size):
            continue
        for ratio in config.ratios or meta.default_ratios:
            n = synthetic_count(ratio, n_train)
            arms.append(_arm(work, generator, ratio, n, seeds, None, seeds, config.device, table))
    return arms


def _arm(work: CellWork, generator: str, ratio: float, n_synthetic: int, cells: int, cached: int | None, sets: int,
         device: str, table: CostTable) -> ArmForecast:
    cell: Price | None = cell_price(table, work, device)
    sampling = sampling_price(table, generator, work.task, n_synthetic, device) if n_synthetic else Price(0.0, "")
    return ArmForecast(task=work.task, regime=work.regime, generator=generator, ratio=ratio, n_synthetic=n_synthetic,
                       cells=cells, cached=cached, synthetic_sets=sets,
                       cell_seconds=None if cell is None else cell.seconds,
                       cell_basis="not measured" if cell is None else cell.basis,
                       sampling_seconds=None if sampling is None else sampling.seconds)
