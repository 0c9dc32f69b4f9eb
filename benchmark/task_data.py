"""A task's data, loaded once per process: planning, every cell of a worker, submit and validate share it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .registry import get_task
from .samples import SampleSet, Splits


@lru_cache(maxsize=4)
def load_splits(task: str, data_root: str | None, train_size: int | None, cache_root: str | None = None) -> Splits:
    """Task data, memoised (loading is pure, so that is safe); arguments are strings so they hash."""
    return get_task(task).load(None if data_root is None else Path(data_root), train_size=train_size,
                               cache_dir=None if cache_root is None else Path(cache_root))


@lru_cache(maxsize=4)
def load_pool(task: str, data_root: str | None, train_size: int | None, cache_root: str | None = None) -> SampleSet:
    """The regime's pool of real training images outside its subset (real_extra's source), memoised like the splits."""
    return get_task(task).pool(None if data_root is None else Path(data_root), train_size=train_size,
                               cache_dir=None if cache_root is None else Path(cache_root))


@lru_cache(maxsize=4)
def load_pretraining_pool(task: str, data_root: str | None, train_size: int | None,
                          cache_root: str | None = None) -> SampleSet:
    """The task's pretraining pool for the regime (`Task.pretraining_pool`), memoised like the splits."""
    return get_task(task).pretraining_pool(None if data_root is None else Path(data_root), train_size=train_size,
                                           cache_dir=None if cache_root is None else Path(cache_root))
