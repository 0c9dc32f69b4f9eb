"""From a run's settings to the list of cells to compute, each named by its content key.

Keys are computed before anything trains: a cell's key hashes the task's data identity, the
downstream recipe, the synthetic set's key (itself the generator revision, the count and the
seed) and the seed. A second generator, a second run, or a resumed run finds what exists by key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .cache import content_key
from .code_identity import code_identity
from .conditions import PROTOCOL_POLICY, ConditionPolicy
from .errors import ConfigError, GeneratorError
from .generator import Generator
from .generator_faults import blamed_on, place
from .protocol import (
    BASELINE,
    FEATURE_SEED,
    FIT_SEED,
    JUDGE_SEED,
    PROXY_SEED,
    REID_SEED,
    STAGE_VERSIONS,
    incompatibility,
    leaked_training_data,
    profiled_meta,
    run_regimes,
    run_seeds,
    serves_regime,
    synthetic_count,
)
from .registry import generator_class, get_task
from .samples import Splits
from .schemas import GeneratorMeta, RunConfig
from .task import Task
from .task_data import load_pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    task: str
    seed: int
    key: str
    train_size: int | None
    data_root: str | None
    device: str
    regime: str | None = None
    """The regime's name, for messages (the key holds the training split itself)."""
    generator: str = BASELINE
    generator_config: dict[str, Any] = field(default_factory=dict)
    ratio: float = 0.0
    n_synthetic: int = 0
    synthetic_key: str | None = None
    fit_key: str | None = None
    data_key: str = ""
    """The task data's key: fit keys of the generators a generator refines are computed from it."""
    condition_policy: ConditionPolicy = PROTOCOL_POLICY
    """How the task draws the conditions of the cell's synthetic set."""

    @property
    def has_synthetic(self) -> bool:
        """False for the real_only baseline's cells, which train on the real images alone."""
        return self.synthetic_key is not None


@dataclass(frozen=True)
class Arm:
    generator: str
    revision: str
    ratio: float
    cells: list[Cell]


@dataclass(frozen=True)
class TaskPlan:
    task: Task
    regime: str
    train_size: int | None
    """The regime's size in real training images (None: the whole training split)."""
    splits: Splits
    seeds: list[int]
    baseline: Arm
    arms: list[Arm]
    data_root: Path | None = None
    """Where the task's real data lies (None: the task makes its own): its test patients' attributes are read there."""

    def cells(self) -> list[Cell]:
        return [c for arm in [self.baseline, *self.arms] for c in arm.cells]


def stage_key(stage: str, inputs: dict[str, Any]) -> str:
    """The cache key of a stage's entry: its inputs and the stage's protocol version."""
    return content_key(stage, STAGE_VERSIONS[stage], inputs)


def data_key(task: Task, splits: Splits, root: Path | None) -> str:
    ids = {name: np.asarray(getattr(splits, name).sample_ids).astype(str) for name in ("train", "val", "test")}
    return stage_key("data", {"fingerprint": task.fingerprint(root), "ids": {k: "\n".join(v) for k, v in ids.items()}})


def largest_regime_splits(task: Task, data_root: Path | None, cache_dir: Path | None) -> tuple[Splits, str]:
    """The real splits of the task's largest regime and their data key: what the models every regime of the task
    shares (the agreement judge, the feature extractor, the re-identification verifier) are trained on."""
    largest = max(task.meta.regimes.values(), key=lambda size: float("inf") if size is None else size)
    splits = task.load(data_root, train_size=largest, cache_dir=cache_dir)
    return splits, data_key(task, splits, data_root)


def fit_key(generator: Generator, data: str, pretraining: Callable[[], str] | None = None) -> str:
    """The fit identity, the generator's code identity (whatever `fit_identity` an override returns), the data and
    the fit seed. The data is the training split's key (`data`); for a fit on the pretraining pool the pool's key
    alone, so that every regime and seed shares it; for a fit that continues one, both keys."""
    identity = {**generator.fit_identity(), "code": code_identity(type(generator))}
    if generator.fit_source == "pretraining" or generator.pretrains():
        if pretraining is None:
            raise ConfigError(f"{generator.meta.name} pretrains on the task's pretraining pool, which this command "
                              f"does not load; train it from scratch")
        pool = pretraining()
        data = pool if generator.fit_source == "pretraining" else stage_key("data", {"train": data, "pool": pool})
    return stage_key("fit", {**identity, "data": data, "seed": FIT_SEED})


def pretraining_key(task: Task, root: Path | None, train_size: int | None) -> str:
    """The key of the task's pretraining pool in a regime: its data identity, without its pixels."""
    return stage_key("data", {"pretraining": task.pretraining_fingerprint(root, train_size=train_size)})


def plan_tasks(config: RunConfig, cache_dir: Path | None = None) -> list[TaskPlan]:
    """One plan per (task, regime) of the run, in task order then regime order."""
    plans = []
    for name in config.tasks:
        regimes = run_regimes(profiled_meta(get_task(name), config.profile), config.regimes, config.train_size)
        plans += [plan_task(name, regime, size, config, cache_dir) for regime, size in regimes.items()]
    return plans


def first_regime_plan(name: str, config: RunConfig, cache_dir: Path | None = None) -> TaskPlan:
    """The plan of the first regime the config covers on task `name` (what agreement and review look at).

    The config is checked as a run's is, and each of its generators must make a synthetic set in that regime:
    otherwise the error comes now, before the task's data is loaded."""
    config = checked_config(config)
    meta = profiled_meta(get_task(name), config.profile)
    regime, size = next(iter(run_regimes(meta, config.regimes, config.train_size).items()))
    for generator in config.generators:
        _refuse_no_synthetic_set(generator_class(generator).meta, name, regime, size)
    return plan_task(name, regime, size, config, cache_dir)


def _refuse_no_synthetic_set(generator: GeneratorMeta, task: str, regime: str, train_size: int | None) -> None:
    if generator.name == BASELINE:
        raise GeneratorError(f"generator {BASELINE} makes no synthetic images: it is the baseline, trained on the "
                             f"real images alone")
    if not serves_regime(generator, train_size):
        raise GeneratorError(f"generator {generator.name} draws real images from the regime's pool, and regime "
                             f"{regime} of task {task} uses the whole training split (no pool): pick another regime")


def plan_task(name: str, regime: str, train_size: int | None, config: RunConfig,
              cache_dir: Path | None = None) -> TaskPlan:
    task = get_task(name)
    root = None if config.data_root is None else str(config.data_root)
    splits = task.load(config.data_root, train_size=train_size, cache_dir=cache_dir)
    if train_size is not None and len(splits.train) < train_size:
        raise ConfigError(f"task {name}'s training split holds {len(splits.train):,} images, fewer than the "
                          f"{train_size:,} that regime {regime} asks for (--train-size at most {len(splits.train):,})")
    data = data_key(task, splits, config.data_root)
    covered = profiled_meta(task, config.profile)
    seeds = run_seeds(covered, config.seeds, config.first_seed)
    ratios = config.ratios or covered.default_ratios
    common = {"task": name, "regime": regime, "train_size": train_size, "device": config.device, "data_key": data,
              "data_root": root}
    policy = task.policy_key(config.condition_policy)
    recipe = task.recipe()

    def cell_key(synthetic: str | None, seed: int) -> str:
        return stage_key("downstream", {"data": data, "recipe": recipe, "synthetic": synthetic, "seed": seed})

    baseline_cells = [Cell(seed=s, key=cell_key(None, s), **common) for s in seeds]
    baseline = Arm(BASELINE, "-", 0.0, baseline_cells)
    arms = []
    for generator_name in config.generators:
        meta = generator_class(generator_name).meta
        if generator_name == BASELINE or incompatibility(meta, task.meta):
            continue  # checked_config dropped or reported the pair before planning
        if not serves_regime(meta, train_size):
            log.warning("skipped: %s has no pool of real images to draw in regime %s of %s (the whole training "
                        "split)", generator_name, regime, name)
            continue
        with blamed_on(generator_class(generator_name), place(name, regime)):
            generator = generator_class(generator_name)(task.meta, **config.generator_config.get(generator_name, {}))
            if generator.pretrains() and task.pretraining_pool_is_empty(config.data_root, train_size=train_size):
                log.warning("%s trains from scratch in regime %s of %s: the regime uses the whole training split, "
                            "which leaves no pretraining pool", generator_name, regime, name)
                generator = generator.from_scratch()
            fitted = fit_key(generator, data, partial(pretraining_key, task, config.data_root, train_size)) \
                if generator.trainable else None
            if fitted:
                generator.mark_fitted(fitted)
            revision = generator.revision()
        for ratio in ratios:
            n = synthetic_count(ratio, len(splits.train))
            if meta.needs_pool and n > len(load_pool(name, root, train_size, None if cache_dir is None else
                                                     str(cache_dir))):
                log.warning("skipped: %s at ratio %g in regime %s of %s needs %d pool images, more than the pool "
                            "holds", generator_name, ratio, regime, name, n)
                continue
            cells = []
            for s in seeds:
                synthetic = stage_key("synthetic", {"revision": revision, "data": data, "n": n, "seed": s,
                                                    **({"conditions": policy} if policy else {})})
                cells.append(Cell(seed=s, key=cell_key(synthetic, s), generator=generator_name,
                                  generator_config=generator.config, ratio=ratio, n_synthetic=n,
                                  synthetic_key=synthetic, fit_key=fitted,
                                  condition_policy=config.condition_policy, **common))
            arms.append(Arm(generator_name, revision, ratio, cells))
    return TaskPlan(task, regime, train_size, splits, seeds, baseline, arms, config.data_root)


def first_ratio_cell(plan: TaskPlan, generator: str, seed: int) -> tuple[Arm, Cell]:
    """The arm of `generator` at the plan's first ratio and its cell of `seed` (what agreement and review look at)."""
    arm = next((a for a in plan.arms if a.generator == generator), None)
    if arm is None:
        raise GeneratorError(f"generator {generator} has no synthetic set on task {plan.task.meta.name} in regime "
                             f"{plan.regime} (the warning above says why)")
    cell = next((c for c in arm.cells if c.seed == seed), None)
    if cell is None:
        raise ConfigError(f"seed {seed}: task {plan.task.meta.name}'s synthetic sets have seeds {plan.seeds[0]} "
                          f"to {plan.seeds[-1]}")
    return arm, cell


def checked_config(config: RunConfig) -> RunConfig:
    """Fail before any work on unknown names; keep only tasks that some requested generator can serve.

    A generator is skipped (with a warning) on the tasks it cannot serve, e.g. `ldm_mask` on a
    classification task; a generator that serves none of the run's tasks is an error.
    """
    if config.train_size is not None and config.train_size < 2:
        raise ConfigError("--train-size must be at least 2 images")
    _check_device(config.device)
    _check_data_root(config.data_root)
    for name in config.tasks:
        meta = profiled_meta(get_task(name), config.profile)
        run_regimes(meta, config.regimes, config.train_size)
        _refuse_reserved_seeds(run_seeds(meta, config.seeds, config.first_seed))
    for kind, names in (("task", config.tasks), ("generator", config.generators)):
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigError(f"the run names {kind} {', '.join(twice)} more than once")
    generators = [generator_class(name).meta for name in config.generators if name != BASELINE]
    unused = sorted(set(config.generator_config) - set(config.generators))
    if unused:
        raise ConfigError(f"generator config names generators that are not in the run: {', '.join(unused)}")
    options = {name: Generator.canonical_config(generator_class(name).checked_options(
        config.generator_config.get(name, {}))) for name in config.generators}
    loaded = [get_task(name) for name in config.tasks]
    for task in loaded:
        _refuse_leaks(generators, task)
    tasks = [task.meta for task in loaded]
    for generator in generators:
        reasons = [incompatibility(generator, task) for task in tasks]
        if all(reasons):
            raise GeneratorError("; ".join(reasons))
        for reason in filter(None, reasons):
            log.warning("skipped: %s", reason)
    served = [t.name for t in tasks if not generators or any(incompatibility(g, t) is None for g in generators)]
    given = {name: options[name] for name in config.generator_config}
    return config.model_copy(update={"tasks": served, "generator_config": given})


def _refuse_reserved_seeds(seeds: list[int]) -> None:
    """The agreement judge, the proxy, the feature encoder and the re-identification verifier train with seeds of
    their own, so that none of them is ever a compared model."""
    reserved = sorted({JUDGE_SEED, PROXY_SEED, FEATURE_SEED, REID_SEED} & set(seeds))
    if reserved:
        raise ConfigError(f"--first-seed: the run's seeds {seeds[0]} to {seeds[-1]} include {reserved[0]}, which the "
                          f"protocol reserves (agreement judge {JUDGE_SEED}, proxy {PROXY_SEED}, feature encoder "
                          f"{FEATURE_SEED}, re-identification verifier {REID_SEED}); start elsewhere")


def _check_data_root(root: Path | None) -> None:
    """A data root that is not a folder is a typo: refused even where the run's tasks read no real data."""
    if root is not None and not root.is_dir():
        raise ConfigError(f"--data-root {root} is not a folder")


def _check_device(device: str) -> None:
    """A device this machine has: asking for a GPU that is not there fails now, not inside the first cell."""
    if device == "cpu":
        return
    import torch

    available = torch.cuda.is_available() if device.startswith("cuda") else torch.backends.mps.is_available()
    if not available:
        raise ConfigError(f"--device {device}: this machine has no such device (use --device cpu)")


def _refuse_leaks(generators: list[GeneratorMeta], task: Task) -> None:
    """A generator that declares it learnt from the task's val or test data cannot be benchmarked on the task."""
    for generator in generators:
        leaks = [generator.trained_on[i] for i in leaked_training_data(generator.trained_on, task.meta, task.folder)]
        if leaks:
            raise GeneratorError(f"generator {generator.name} declares it was trained on "
                                 f"{', '.join(f'{r.dataset}/{r.split}' for r in leaks)}: data of task "
                                 f"{task.meta.name} beyond its train split and pretraining pool (its val or "
                                 f"test data would leak)")
