"""The Ray executor: each generator fit and each cell a Ray task, on a local Ray instance or on a cluster.

The shape of lm-evaluation-harness's Ray driver: one task per unit of work, each writing its own output. Here the
output is a cache entry, written by the same code as in a local worker (`cell.run_cell`, `cell.fit_generator`), so
an entry is committed atomically with its integrity marker or not at all. The driver holds nothing but the tasks'
handles: a killed driver loses the tasks in flight (Ray ends a job's tasks with its driver) and the next run finds
every finished entry by its key. Ray is imported only here, and only when a run asks for it (the `ray` extra).

Fits are tasks too, so that they run where their declared resources are (a GPU), not on the driver's machine. The
fits of one task run one after another, each waiting on the previous: they may share a parent (the reference LDM's
pretraining on the task's pool is the parent of every regime's fine-tuning), which must be fitted once, as the local
executor does by fitting in order. A cell waits only on its own arm's fit, so the baseline's cells and other
arms' cells start at once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import progress
from .cell import fit_generator, run_cell
from .errors import CacheError, ConfigError
from .executor import label
from .generator_faults import place
from .kernels import PINNED
from .plan import Cell

OBJECT_STORE_BYTES = 100 * 1024**2
"""A local instance's object store. Tasks exchange cells and keys only (the data travels through the cache), so
Ray's default, 30% of the machine's memory, would only be taken from the cells."""
WORKER_NICENESS = "RAY_worker_niceness"


@dataclass(frozen=True)
class RayCluster:
    """Where the Ray executor runs: the cluster at `address` (as `ray start --head` prints it, `auto` for the one
    this machine belongs to, or `ray://host:10001`), or, with None, a local instance with one CPU per worker. A
    process already connected to Ray (`ray.init` before the run) keeps its connection."""

    address: str | None = None

    @property
    def local(self) -> bool:
        return self.address in (None, "local")


def require_ray() -> Any:
    """The `ray` module, or a one-line ConfigError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed: pip install 'cxrbench[ray]'") from None
    return ray


def shared_cache_root(root: Path, cluster: RayCluster) -> str:
    """The cache root as every task sees it. A relative path means another folder on another node (its worker's
    working directory), so on a cluster it is refused; a local instance shares this machine, so it is resolved."""
    if not (cluster.local or root.is_absolute()):
        raise ConfigError(f"--cache-dir {root} is a relative path: on a Ray cluster every node must see the cache at "
                          "one absolute path on a file system they all mount (docs/scaling.md)")
    return str(root.resolve())


def _on_node(work: Callable[[Cell, str], str | None], cell: Cell, cache_root: str, *_waited_on: Any) -> str | None:
    """One task's body: `work(cell, cache_root)` on a node that sees the cache. `_waited_on`: the fit tasks this one
    waits for (Ray starts a task once its arguments are ready). A node without the shared file system would make an
    empty cache of its own (`Cache` creates its folder) and compute into it, lost to the run; the driver made the
    cache's `locks/` folder, so its absence means this node sees another place."""
    if not (Path(cache_root) / "locks").is_dir():
        raise CacheError(f"node {socket.gethostname()} does not see the run's cache at {cache_root}: the cache must "
                         "be on a file system every node mounts at the same path (docs/scaling.md)")
    logging.getLogger("cxrbench.registry").setLevel(logging.ERROR)  # the driver warned about failed plugins once
    return work(cell, cache_root)


def _needs(cell: Cell, name: str) -> dict[str, Any]:
    """A task's declared resources, and its `name` in Ray's task list: one CPU (cells train on one thread), one GPU
    when the run's device is CUDA."""
    return {"num_cpus": 1, "num_gpus": 1 if cell.device.startswith("cuda") else 0, "name": name}


def _job_settings() -> dict[str, Any]:
    """What every connection sets: the kernel pins (kernels.py) travel with every task, so that a node whose
    environment lacks them, or sets others, trains on the driver's kernels, which the result's environment records;
    Ray's own INFO lines stay off the run's output."""
    pins = {name: os.environ[name] for name in PINNED if name in os.environ}
    return {"runtime_env": {"env_vars": pins}, "logging_level": logging.WARNING}


def start_local_instance(workers: int) -> None:
    """Start a local Ray instance of `workers` CPUs and connect to it. Its workers run at this process's priority,
    as the local pool's do (Ray lowers its workers' by 15 by default: on a shared machine every other job would come
    first); its object store is small (`OBJECT_STORE_BYTES`)."""
    ray = require_ray()
    given = os.environ.get(WORKER_NICENESS)
    os.environ.setdefault(WORKER_NICENESS, "0")  # read by the raylet that ray.init starts
    try:
        ray.init(address="local", num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                 **_job_settings())
    finally:
        if given is None:
            del os.environ[WORKER_NICENESS]


@contextmanager
def _connected(ray: Any, cluster: RayCluster, workers: int) -> Iterator[None]:
    """Connected to Ray for the run: to the caller's connection if there is one, else to the cluster or a new
    local instance, left (and a local instance stopped) at the end."""
    if ray.is_initialized():
        yield
        return
    if cluster.local:
        start_local_instance(workers)
    else:
        try:
            ray.init(address=cluster.address, **_job_settings())
        except ConnectionError as error:
            raise ConfigError(f"--ray-address {cluster.address}: no Ray cluster to connect to there: {error}") from None
    try:
        yield
    finally:
        ray.shutdown()


def execute_on_ray(fits: Sequence[Cell], cells: Sequence[Cell], cache_root: Path, *, workers: int,
                   cluster: RayCluster) -> None:
    """Fit the generators of `fits` (one cell per arm to fit) and compute `cells`, as Ray tasks; the first failure
    ends the run, cancelling the tasks not yet done, and is raised as the task raised it."""
    ray = require_ray()
    root = shared_cache_root(cache_root, cluster)
    with _connected(ray, cluster, workers):
        task = ray.remote(_on_node)
        fitted: dict[str | None, Any] = {}
        last_fit: dict[str, Any] = {}
        for cell in fits:
            if cell.fit_key in fitted:  # another ratio of the same generator: one fit
                continue
            after = [last_fit[cell.task]] if cell.task in last_fit else []
            name = f"fit {cell.generator} {place(cell.task, cell.regime)}"
            fitted[cell.fit_key] = last_fit[cell.task] = \
                task.options(**_needs(cell, name)).remote(fit_generator, cell, root, *after)
        pending = {task.options(**_needs(cell, label(cell))).remote(
            run_cell, cell, root, *([fitted[cell.fit_key]] if cell.fit_key in fitted else [])): cell for cell in cells}
        try:
            with progress.bar("cells", total=len(cells)) as bar:
                while pending:
                    (ready,), _ = ray.wait(list(pending), num_returns=1)
                    ray.get(ready)
                    bar.describe(f"cells: {label(pending.pop(ready))} done")
                    bar.advance()
            ray.get(list(fitted.values()))  # a fit whose cells were all complete still reports its failure
        except ray.exceptions.RayTaskError as error:
            for unfinished in [*pending, *fitted.values()]:
                ray.cancel(unfinished, force=True)
            raise error.cause from None
