"""One run: plan the cells, fit generators, compute missing cells, score, write a RunResult."""

from __future__ import annotations

import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from . import __version__, progress
from .cache import Cache
from .executor import execute
from .feature_extractors import DEFAULT_SPEC, local_extractor
from .fitting import ready_generator
from .kernels import cpu_identity, kernel_settings
from .plan import Cell, TaskPlan, checked_config, plan_tasks
from .protocol import PROTOCOL_VERSION, SMOKE_PROFILE_VERSION
from .ray_executor import RayCluster, execute_on_ray
from .registry import generator_class
from .schemas import RunConfig, RunResult
from .scoring import METHODS, score_run

log = logging.getLogger(__name__)


def _arms_to_fit(plans: list[TaskPlan], cache: Cache, wanted: set[str]) -> list[tuple[TaskPlan, Cell]]:
    """Each trainable arm that a wanted cell needs fitted (a synthetic set of its is missing), by its first cell."""
    return [(plan, arm.cells[0]) for plan in plans for arm in plan.arms
            if arm.cells[0].fit_key and not all(cache.is_complete("synthetic", c.synthetic_key)
                                                for c in arm.cells if c.key in wanted)]


def compute(plans: list[TaskPlan], cells: list[Cell], cache: Cache, *, workers: int, show_progress: bool,
            console: Console | None = None, ray: RayCluster | None = None) -> None:
    """Put `cells` (of `plans`) into the cache: fit their generators first, then train the missing cells; with
    `show_progress`, on one display (`progress`) on `console` (default: stderr) when that is a terminal.

    Locally, each generator a cell needs is fitted here, once, before the pool's workers that need it start in
    parallel; with `ray`, fits and cells are Ray tasks, each cell waiting on its arm's fit (`ray_executor`)."""
    wanted = {cell.key for cell in cells}
    with progress.showing(show_progress, console):
        fits = _arms_to_fit(plans, cache, wanted)
        if ray is None:
            for plan, cell in fits:
                ready_generator(cell, cache, plan.splits.train)
        missing = [cell for cell in cells if not cache.is_complete("downstream", cell.key)]
        log.info("%d of %d cells to compute", len(missing), len(cells))
        if ray is None:
            execute(missing, str(cache.root), workers=workers)
        else:
            execute_on_ray([cell for _, cell in fits], missing, cache.root, workers=workers, cluster=ray)


def _environment() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    env = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "monai", "numpy", "scipy", "scikit-learn", "pingouin"):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            env[package] = "not installed"
    return {**env, **kernel_settings(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu": cpu_identity()}


def run(config: RunConfig, cache_root: Path, *, workers: int = 1, show_progress: bool = True,
        console: Console | None = None, ray: RayCluster | None = None) -> RunResult:
    """`config`'s result, its cells computed by a local pool of `workers` processes, or as Ray tasks with `ray`."""
    started = time.perf_counter()
    config = checked_config(config)
    if config.quality and config.feature_extractor != DEFAULT_SPEC:
        local_extractor(config.feature_extractor, device=config.device)  # a wrong path: refused before any cell
    cache = Cache(cache_root)
    plans = plan_tasks(config, cache.root)
    compute(plans, [cell for plan in plans for cell in plan.cells()], cache, workers=workers,
            show_progress=show_progress, console=console, ray=ray)
    scored = score_run(plans, cache, n_boot=config.n_boot, profile=config.profile)
    tasks = scored.tasks
    if config.quality:
        from .quality import assess_run  # its extractors and verifier load torch only when a run measures quality

        with progress.showing(show_progress, console):
            qualities = assess_run(plans, config, cache)
        tasks = [task.model_copy(update={"quality": quality}) for task, quality in zip(tasks, qualities, strict=True)]
    for generator, members in scored.incomplete.items():
        log.warning("incomplete: %s lacks %d comparison(s) of its protocol family (counted as p = 1): %s",
                    generator, len(members), "; ".join(members))
    result = RunResult(
        protocol_version=PROTOCOL_VERSION,
        smoke_profile_version=SMOKE_PROFILE_VERSION if config.profile == "smoke" else None,
        cxrbench_version=__version__, created=datetime.now(timezone.utc),
        config=config, generators=[generator_class(g).meta for g in config.generators], tasks=tasks,
        incomplete=scored.incomplete,
        methods=METHODS, environment=_environment(), wall_seconds=time.perf_counter() - started,
    )
    return result
