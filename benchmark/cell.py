"""Computing one cell: make (or find) its synthetic set, train the downstream model, store predictions.

Everything a cell needs is in its `Cell` description and the cache, so a cell runs the same inline
or in a worker process, and a killed cell leaves nothing a later run trusts.
"""

from __future__ import annotations

from pathlib import Path

from . import progress
from .cache import Cache
from .device import device_policy
from .fitting import ready_generator
from .generator_faults import blamed_on, place
from .plan import Cell
from .predictions import save_predictions
from .registry import get_task
from .samples import SampleSet, Splits
from .synthetic import read_synthetic_set, write_synthetic_set
from .task_data import load_pool, load_splits


def synthetic_set(cell: Cell, cache: Cache, splits: Splits) -> SampleSet:
    """The cell's synthetic images as training rows, generated and stored first if the cache lacks them."""
    task = get_task(cell.task)
    if not cache.is_complete("synthetic", cell.synthetic_key):
        generator = ready_generator(cell, cache, splits.train)
        conditions = task.conditions(splits.train, cell.n_synthetic, seed=cell.seed,
                                     policy=cell.condition_policy)
        pool = load_pool(cell.task, cell.data_root, cell.train_size, str(cache.root)) \
            if generator.meta.needs_pool else None
        where = place(cell.task, cell.regime, cell.seed)
        with blamed_on(type(generator), where), \
                progress.stage(f"{cell.generator}: sampling {len(conditions)} images {where}"):
            if pool is not None:
                images, conditions = generator.draw(conditions, pool, seed=cell.seed)
            else:
                images = generator.checked_generate(conditions, seed=cell.seed, regime=cell.regime,
                                                    batch_size=device_policy(cell.device).inference_batch_size(64))
            revision, notes = generator.revision(), generator.generation_notes()
        with cache.writing("synthetic", cell.synthetic_key, {"generator": cell.generator, "seed": cell.seed}) as out:
            write_synthetic_set(out, images, conditions, generator=cell.generator, revision=revision,
                                task=cell.task, seed=cell.seed, notes=notes)
    return read_synthetic_set(cache.path("synthetic", cell.synthetic_key), task.meta.labels)


def run_cell(cell: Cell, cache_root: str) -> str:
    """Compute `cell` unless the cache holds it; returns its key."""
    cache = Cache(Path(cache_root))
    if cache.is_complete("downstream", cell.key):
        return cell.key
    splits = load_splits(cell.task, cell.data_root, cell.train_size, cache_root)
    train = splits.train
    if cell.has_synthetic:
        train = SampleSet.concat([train, synthetic_set(cell, cache, splits)])
    predictions = get_task(cell.task).train_and_predict(train, splits, seed=cell.seed, device=cell.device)
    with cache.writing("downstream", cell.key, {"task": cell.task, "generator": cell.generator, "ratio": cell.ratio,
                                                "seed": cell.seed}) as out:
        save_predictions(out, predictions)
    return cell.key


def fit_generator(cell: Cell, cache_root: str) -> str | None:
    """Put the fit of `cell`'s generator into the cache unless it holds it; returns its key. The regime's training
    split is loaded here, from the cell alone, so that a fit runs anywhere a cell can (a Ray task on another
    machine); the local executor fits in its own process, on the split its plan holds (`runner.compute`)."""
    cache = Cache(Path(cache_root))
    ready_generator(cell, cache, load_splits(cell.task, cell.data_root, cell.train_size, cache_root).train)
    return cell.fit_key
