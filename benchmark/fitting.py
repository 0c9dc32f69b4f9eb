"""The generator fit cache: a trainable generator is fitted once per (task data, config) and loaded after.

A generator that refines another (`Generator.refines`) has that one fitted or loaded first, under
its own key, so every round of a fine-tuning chain is its own cached fit. A chain may start with a fit on the
task's pretraining pool (`Generator.fit_source`), keyed by the pool alone and so shared by every regime and seed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from . import progress
from .cache import Cache
from .generator import Generator
from .generator_faults import blamed_on, place
from .plan import Cell, fit_key, pretraining_key
from .protocol import FIT_SEED
from .registry import generator_class, get_task
from .samples import SampleSet
from .task_data import load_pretraining_pool


@dataclass(frozen=True)
class FitData:
    """What the fits of a chain may learn from: the regime's training split under its data key, and the task's
    pretraining pool, loaded (and keyed) only when a fit of the chain asks for it."""

    train: SampleSet
    key: str
    pool: Callable[[], SampleSet]
    pool_key: Callable[[], str]
    task: str
    regime: str | None

    def samples_for(self, generator: Generator) -> SampleSet:
        return self.pool() if generator.fit_source == "pretraining" else self.train

    def stage(self, generator: Generator, *, continued: bool) -> str:
        """What fitting `generator` is called on the progress display; `continued`: it starts from another fit."""
        if generator.fit_source == "pretraining":
            return f"{generator.meta.name}: pretraining on {self.task}'s pool"
        return f"{generator.meta.name}: {'fine-tuning' if continued else 'fitting'} {place(self.task, self.regime)}"


def ready_generator(cell: Cell, cache: Cache, train: SampleSet) -> Generator:
    """The cell's generator, fitted: loaded from the cache if trainable, else fitted on the spot (cheap). Its own
    failures are one line naming it, the task, the regime and the fit seed (`generator_faults`)."""
    task = get_task(cell.task)
    cls = generator_class(cell.generator)
    with blamed_on(cls, place(cell.task, cell.regime, FIT_SEED)):
        generator = cls(task.meta, device=cell.device, **cell.generator_config)
        if not generator.trainable:
            with tempfile.TemporaryDirectory() as workdir:
                generator.fit(train, seed=FIT_SEED, workdir=Path(workdir))
            return generator
        root = None if cell.data_root is None else Path(cell.data_root)
        data = FitData(train, cell.data_key,
                       partial(load_pretraining_pool, cell.task, cell.data_root, cell.train_size, str(cache.root)),
                       partial(pretraining_key, task, root, cell.train_size), cell.task, cell.regime)
        return fitted(generator, cache, data)


def fitted(generator: Generator, cache: Cache, data: FitData) -> Generator:
    """`generator` loaded from its cached fit, fitting it (after the generator it refines, if any) when missing."""
    key = fit_key(generator, data.key, data.pool_key)
    if not cache.is_complete("fit", key):
        parent = generator.refines()
        if parent is not None:
            generator.start_from(fitted(parent, cache, data))
        samples = data.samples_for(generator)
        with cache.writing("fit", key, {"generator": generator.meta.name, "config": generator.config}) as out:
            with progress.stage(data.stage(generator, continued=parent is not None)), \
                    tempfile.TemporaryDirectory() as workdir:
                generator.fit(samples, seed=FIT_SEED, workdir=Path(workdir))
            generator.save(out)
    generator.load(cache.path("fit", key))
    generator.mark_fitted(key)
    return generator
