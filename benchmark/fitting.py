"""The generator fit cache: a trainable generator is fitted once per (task data, config) and loaded after.

A generator that refines another (`Generator.refines`) has that one fitted or loaded first, under
its own key, so every round of a fine-tuning chain is its own cached fit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .cache import Cache
from .generator import Generator
from .generator_faults import blamed_on, place
from .plan import Cell, fit_key
from .protocol import FIT_SEED
from .registry import generator_class, get_task
from .samples import SampleSet


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
        return fitted(generator, cache, train, cell.data_key)


def fitted(generator: Generator, cache: Cache, train: SampleSet, data: str) -> Generator:
    """`generator` loaded from its cached fit, fitting it (after the generator it refines, if any) when missing."""
    key = fit_key(generator, data)
    if not cache.is_complete("fit", key):
        parent = generator.refines()
        if parent is not None:
            generator.start_from(fitted(parent, cache, train, data))
        with cache.writing("fit", key, {"generator": generator.meta.name, "config": generator.config}) as out:
            with tempfile.TemporaryDirectory() as workdir:
                generator.fit(train, seed=FIT_SEED, workdir=Path(workdir))
            generator.save(out)
    generator.load(cache.path("fit", key))
    generator.mark_fitted(key)
    return generator
