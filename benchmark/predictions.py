"""The downstream stage's file: a cell's per-case predictions as one compressed npz in its cache entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cache import Cache
from .plan import Cell
from .task import Predictions

PREDICTIONS = "predictions.npz"


def save_predictions(directory: Path, predictions: Predictions) -> None:
    np.savez_compressed(directory / PREDICTIONS, **predictions)


def load_predictions(cache: Cache, cell: Cell) -> Predictions:
    with np.load(cache.path("downstream", cell.key) / PREDICTIONS) as data:
        return {name: data[name] for name in data.files}
