"""Computing one cell: make (or find) its synthetic set, train the downstream model, store predictions.

Everything a cell needs is in its `Cell` description and the cache, so a cell runs the same inline
or in a worker process, and a killed cell leaves nothing a later run trusts.
"""

from __future__ import annotations

import logging
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .cache import Cache
from .generator import Generator
from .plan import FIT_SEED, FIT_STAGE, SYNTHETIC_STAGE, DOWNSTREAM_STAGE, Cell, fit_key
from .registry import generator_class, get_task
from .samples import SampleSet, Splits
from .synthetic import read_synthetic_set, write_synthetic_set

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.npz"


@lru_cache(maxsize=4)
def load_splits(task: str, data_root: str | None, train_size: int | None, cache_root: str | None = None) -> Splits:
    """Task data, loaded once per process (loading is pure, so memoising is safe)."""
    return get_task(task).load(None if data_root is None else Path(data_root), train_size=train_size,
                               cache_dir=None if cache_root is None else Path(cache_root))


def ready_generator(cell: Cell, cache: Cache, train: SampleSet) -> Generator:
    """The cell's generator, fitted: loaded from the cache if trainable, else fitted on the spot (cheap)."""
    task = get_task(cell.task)
    generator = generator_class(cell.generator)(task.meta, device=cell.device, **cell.generator_config)
    if not generator.trainable:
        with tempfile.TemporaryDirectory() as workdir:
            generator.fit(train, seed=FIT_SEED, workdir=Path(workdir))
        return generator
    return fitted(generator, cache, train, cell.data_key)


def fitted(generator: Generator, cache: Cache, train: SampleSet, data: str) -> Generator:
    """`generator` loaded from its cached fit, fitting it (after the generator it refines, if any) when missing."""
    stage = FIT_STAGE[0]
    key = fit_key(generator, data)
    if not cache.is_complete(stage, key):
        parent = generator.refines()
        if parent is not None:
            generator.start_from(fitted(parent, cache, train, data))
        with cache.writing(stage, key, {"generator": generator.meta.name, "config": generator.config}) as out:
            with tempfile.TemporaryDirectory() as workdir:
                generator.fit(train, seed=FIT_SEED, workdir=Path(workdir))
            generator.save(out)
    generator.load(cache.path(stage, key))
    generator.mark_fitted(key)
    return generator


def synthetic_set(cell: Cell, cache: Cache, splits: Splits) -> SampleSet:
    task = get_task(cell.task)
    stage = SYNTHETIC_STAGE[0]
    if not cache.is_complete(stage, cell.synthetic_key):
        generator = ready_generator(cell, cache, splits.train)
        conditions = task.conditions(splits.train, cell.n_synthetic, seed=cell.seed)
        images = generator.checked_generate(conditions, seed=cell.seed)
        with cache.writing(stage, cell.synthetic_key, {"generator": cell.generator, "seed": cell.seed}) as out:
            write_synthetic_set(out, images, conditions, generator=cell.generator, revision=generator.revision(),
                                task=cell.task, seed=cell.seed, notes=generator.generation_notes())
    return read_synthetic_set(cache.path(stage, cell.synthetic_key), task.meta.labels)


def run_cell(cell: Cell, cache_root: str) -> str:
    """Compute `cell` unless the cache holds it; returns its key."""
    cache = Cache(Path(cache_root))
    stage = DOWNSTREAM_STAGE[0]
    if cache.is_complete(stage, cell.key):
        return cell.key
    splits = load_splits(cell.task, cell.data_root, cell.train_size, cache_root)
    train = splits.train
    if cell.generator is not None:
        train = SampleSet.concat([train, synthetic_set(cell, cache, splits)])
    predictions = get_task(cell.task).train_and_predict(train, splits, seed=cell.seed, device=cell.device)
    with cache.writing(stage, cell.key, {"task": cell.task, "generator": cell.generator, "ratio": cell.ratio,
                                         "seed": cell.seed}) as out:
        np.savez_compressed(out / PREDICTIONS, **predictions)
    return cell.key


def load_predictions(cache: Cache, cell: Cell) -> dict[str, np.ndarray]:
    with np.load(cache.path(DOWNSTREAM_STAGE[0], cell.key) / PREDICTIONS) as data:
        return {name: data[name] for name in data.files}
