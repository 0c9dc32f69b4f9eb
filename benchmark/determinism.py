"""Torch runs that give the same numbers anywhere: one thread, and an RNG seeded inside a fork.

Shared by the downstream recipes (`tasks/downstream/training.py`) and the models the core trains itself (the
re-identification verifier), so that every trained model in the benchmark follows one rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread: a sum's order, hence its rounding, cannot depend on the machine's core count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def deterministic_cell(seed: int) -> Iterator[None]:
    """One thread, and torch's RNG seeded with `seed` inside a fork: the caller's RNG is left as it was."""
    import torch

    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
