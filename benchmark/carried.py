"""Synthetic sets an entry carries, so that CI can retrain a third-party generator's arm without its code.

CI does not run a submitter's code, but on a task whose images may be published (the embedded suite)
an entry can bring the images its generator made: one npz per task file, `synthetic/<task file>.npz`,
holding each cell's set as 16-bit images (what the run's cache stored, so retraining sees the very same
pixels) under the digest of the conditions it was made for. CI recomputes the conditions itself
(`Task.conditions` is the protocol's, the same for every generator), so an image set can only stand for
the arm it was made for; `generators/carried.py` serves them to the ordinary cell code.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from .conditions import Condition
from .synthetic import to_uint16
from .untrusted import read_bounded

SETS_DIR = "synthetic"
MAX_SETS_BYTES = 64_000_000
"""A whole embedded entry (every regime, seed and ratio of a task file) stays well under this."""


def sets_path(task_file: Path) -> Path:
    """Where the entry keeps the synthetic sets of a task file (`<suite>__<task>__<regime>.json`)."""
    return task_file.parent / SETS_DIR / f"{task_file.stem}.npz"


def conditions_digest(conditions: list[Condition]) -> str:
    """The sha256 of the conditions as JSON: the key a set is stored under."""
    text = json.dumps([c.model_dump(mode="json") for c in conditions], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_sets(sets: dict[str, np.ndarray]) -> bytes:
    """The npz's bytes (compressed) of `digest -> float images in [0, 1]`."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{digest: to_uint16(images) for digest, images in sets.items()})
    return buffer.getvalue()


def read_sets(path: Path) -> dict[str, np.ndarray]:
    """`digest -> uint16 images (N, H, W)` from a carried file: a regular file under MAX_SETS_BYTES, no pickles;
    raises OSError or ValueError naming what is wrong."""
    data = read_bounded(path, MAX_SETS_BYTES)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            sets = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"not an npz archive of synthetic sets ({error})") from None
    for digest, images in sets.items():
        if images.dtype != np.uint16 or images.ndim != 3:
            raise ValueError(f"set {digest[:12]}: expected 16-bit images (N, H, W), got {images.dtype} "
                             f"{images.shape}")
    return sets
