"""The local executor: cells in a pool of worker processes, with a bar on the run's progress display.

Cells pin torch to one thread each (see the downstream training loop), so a pool of one worker
per core uses the machine fully and gives the same numbers as running the cells one by one. Workers draw
nothing: their stages (sampling) reach the parent's display through the channel their initializer is given.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from . import progress
from .cell import run_cell
from .plan import Cell


def label(cell: Cell) -> str:
    """A cell as the progress display (and Ray's task list) names it."""
    arm = f"{cell.generator} x{cell.ratio:g}" if cell.has_synthetic else cell.generator
    return f"{cell.task} {arm} seed {cell.seed}"


def die_with_parent() -> None:
    """A worker's initializer: on Linux, the kernel kills the worker when the process that started it dies, so a
    killed run (SIGKILL or SIGTERM) leaves no worker behind, still training and holding its memory.

    A parent that died while the worker was still starting (seconds of imports) is gone before the request: the
    worker, adopted by another process, would wait for cells forever. It checks that after asking (prctl(2)).
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            os.kill(os.getpid(), signal.SIGKILL)


def start_worker(channel: progress.Queue | None) -> None:
    """A worker's initializer: it dies with its parent (`die_with_parent`), reports its stages to the parent's
    display through `channel`, and leaves the warnings about plugins that failed to load to the parent, which gave
    them once already (each worker loads the plugins again)."""
    die_with_parent()
    progress.report_to(channel)
    logging.getLogger("cxrbench.registry").setLevel(logging.ERROR)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Spawned workers set up by `start_worker`: each reports its stages to this run's display, if one is shown."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_worker, initargs=(progress.channel(),))


def execute(cells: Sequence[Cell], cache_root: str, *, workers: int) -> None:
    if not cells:
        return
    with progress.bar("cells", total=len(cells)) as bar:
        if workers <= 1:
            for cell in cells:
                bar.describe(f"cells: {label(cell)}")
                run_cell(cell, cache_root)
                bar.advance()
            return
        with worker_pool(workers) as pool:
            futures = {pool.submit(run_cell, cell, cache_root): cell for cell in cells}
            for future in as_completed(futures):
                try:
                    future.result()
                except BaseException:  # the first failure ends the run: the queued cells are not started
                    pool.shutdown(cancel_futures=True)
                    raise
                bar.describe(f"cells: {label(futures[future])} done")
                bar.advance()
