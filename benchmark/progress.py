"""The run's one progress display: the stage running (pretraining, fine-tuning, sampling) and the cells bar.

Fits run in the parent before the cells (`runner.compute`), but sampling runs inside the cells, which the executor
may hand to worker processes, and two rich Live displays in different processes garble a terminal. So only the
parent draws. Code anywhere opens a `stage`, which reports to its process's sink: in the parent that is the
display; in a worker it is a queue (`channel`, passed through the pool's initializer) that the parent drains on a
thread. Each process gets one line, its open stages joined ("ldm_mask: pretraining on phantom_seg's pool -
autoencoder 120/400"), with the innermost stage's count, elapsed time and time remaining; the cells have a row of
their own (`bar`). Without a terminal (CI logs, --format json) nothing is drawn: stages are INFO log lines.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.queues import Queue

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger(__name__)

_numbers = itertools.count()


@dataclass(frozen=True)
class Update:
    """A row's whole state (so updates can be dropped or merged without drift); `line` None removes the row."""

    row: str
    line: str | None
    total: int | None = None
    completed: int = 0
    stage: int = -1
    """The stage the counts belong to: a new one restarts the row's clock."""


_sink: Callable[[Update], None] | None = None
_display: Display | None = None
_open: list[Stage] = []
"""This process's open stages, outermost first: its line."""


@dataclass(eq=False)
class Stage:
    """A piece of work on a row: `advance` it by the steps done; `describe` renames it."""

    description: str
    total: int | None
    row: str
    chain: list[Stage]
    """The stages its row shows, outermost first."""
    completed: int = 0
    number: int = field(default_factory=lambda: next(_numbers))

    def advance(self, steps: int = 1) -> None:
        self.completed += steps
        _show(self.row, self.chain)

    def describe(self, description: str) -> None:
        self.description = description
        _show(self.row, self.chain)


def _show(row: str, chain: list[Stage]) -> None:
    if _sink is None:
        return
    key = f"{os.getpid()}:{row}"
    if not chain:
        _sink(Update(key, None))
        return
    last = chain[-1]
    _sink(Update(key, " - ".join(s.description for s in chain), last.total, last.completed, last.number))


@contextmanager
def stage(description: str, total: int | None = None) -> Iterator[Stage]:
    """`description` running in this process, shown after the stages already open here, e.g. a training loop
    inside a fit; `total` steps if known (else elapsed time only)."""
    if not _open:
        log.info("%s", description)
    current = Stage(description, total, "stage", _open)
    _open.append(current)
    _show(current.row, _open)
    try:
        yield current
    finally:
        _open.remove(current)
        _show(current.row, _open)


@contextmanager
def bar(name: str, total: int) -> Iterator[Stage]:
    """A row of its own, e.g. the cells: it stays in view (the last state stays printed) while stages come and
    go under it."""
    current = Stage(name, total, name, [])
    current.chain.append(current)
    _show(name, current.chain)
    yield current


class Display:
    """The parent's rich Progress: one row per process with an open stage, and the named bars."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self._rows: dict[str, tuple[TaskID, int]] = {}
        self._lock = threading.Lock()
        self._queue: Queue | None = None
        self._drain: threading.Thread | None = None

    def apply(self, update: Update) -> None:
        with self._lock:
            row = self._rows.get(update.row)
            if update.line is None:
                if row is not None:
                    self.progress.remove_task(self._rows.pop(update.row)[0])
                return
            if row is None:
                task = self.progress.add_task(update.line, total=update.total, completed=update.completed)
            elif row[1] != update.stage:
                task = row[0]
                self.progress.reset(task, description=update.line, total=update.total, completed=update.completed)
            else:
                self.progress.update(row[0], description=update.line, completed=update.completed)
                return
            self._rows[update.row] = (task, update.stage)
        self.progress.refresh()  # a new stage is drawn at once, not at the next tick

    def channel(self) -> Queue:
        """The queue worker processes report to, drained here on a thread until `close`."""
        if self._queue is None:
            self._queue = multiprocessing.get_context("spawn").Queue()
            self._drain = threading.Thread(target=self._drain_queue, daemon=True)
            self._drain.start()
        return self._queue

    def _drain_queue(self) -> None:
        try:
            while (update := self._queue.get()) is not None:
                self.apply(update)
        except (OSError, EOFError, pickle.UnpicklingError):
            return  # a worker killed mid-message: its row stays as it was; the run reports the failure itself

    def close(self) -> None:
        """Stops draining once the updates already sent are shown (the workers have exited by then); a drain stuck
        on a killed worker's half-written message is left behind (a daemon thread), not waited for."""
        if self._queue is not None:
            self._queue.put(None)
            self._drain.join(timeout=5)
            self._queue.close()


@contextmanager
def showing(enabled: bool, console: Console | None = None) -> Iterator[None]:
    """Draws the progress of what runs inside on `console` (default: stderr) if `enabled` and it is a terminal."""
    global _sink, _display
    console = console or Console(stderr=True)
    if not enabled or not console.is_terminal or _display is not None:
        yield
        return
    display = Display(console)
    with display.progress:
        _sink, _display = display.apply, display
        try:
            yield
        finally:
            display.close()
            _sink, _display = None, None


def channel() -> Queue | None:
    """What a worker process reports to (`report_to`); None when nothing is drawn."""
    return None if _display is None else _display.channel()


def report_to(queue: Queue | None) -> None:
    """A worker's set-up: its stages go to the parent's display through `queue` (None: nowhere)."""
    global _sink
    _sink = None if queue is None else queue.put
