"""The training loop both downstream recipes share: seeded, single-threaded per cell, fixed epochs.

Each cell pins torch to one thread and seeds from its own seed inside `fork_rng`, so the same cell
gives the same numbers whether it runs inline or in a worker process, and no global RNG leaks out.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0


@contextmanager
def deterministic_cell(seed: int) -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def fit(model, inputs: np.ndarray, targets: np.ndarray, loss_fn: Callable, schedule: Schedule, *, seed: int,
        device: str) -> None:
    """Adam for a fixed number of epochs over (inputs, targets), shuffled by a torch.Generator from `seed`."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    order_rng = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    for _ in range(schedule.epochs):
        order = torch.randperm(len(x), generator=order_rng)
        for start in range(0, len(x), schedule.batch_size):
            batch = order[start : start + schedule.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[batch].to(device)), y[batch].to(device))
            loss.backward()
            optimiser.step()


def predict(model, inputs: np.ndarray, *, device: str, batch_size: int = 128) -> np.ndarray:
    """Sigmoid outputs of `model` over `inputs`, in order."""
    import torch

    model.to(device).eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size], dtype=np.float32))
            outputs.append(torch.sigmoid(model(batch.to(device))).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)
