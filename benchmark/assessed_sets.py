"""The arrays an entry's quality numbers follow from, so that `cxrbench validate` can recompute every one of them.

Per assessed arm (`TaskResult.quality`), one npz per task file, `quality/<suite>__<task>__<regime>.npz`: the assessed
synthetic set's features in the task's feature space (float32, every task) and, on a task whose images may be
published (`Task.redistributable`: the embedded suite), its images as the run's cache stored them (16-bit). The
real side (test and training features, training images) is CI's own: an entry never brings it. Without images the
numbers that need pixels (pixel-space memorisation, re-identification) cannot be recomputed, so an entry leaves them
out (`publishable`).

Sizes: phantom_cls full assesses 200 images of 64x64 per arm (1.6 MB of 16-bit pixels, 51 kB of 64-d features
before compression); open pneumonia_cls full 1000 feature rows per arm (256 kB). `MAX_ASSESSED_BYTES` bounds both
the file and what it unpacks to.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .fidelity.assessment import NO_IMAGES, ArmQuality
from .submission import prediction_key
from .synthetic import to_uint16
from .untrusted import load_npz, read_bounded

ASSESSED_DIR = "quality"
MAX_ASSESSED_BYTES = 32_000_000
FEATURES, IMAGES = "features", "images"


def assessed_path(task_file: Path) -> Path:
    """Where the entry keeps the assessed sets of a task file (`<suite>__<task>__<regime>.json`)."""
    return task_file.parent / ASSESSED_DIR / f"{task_file.stem}.npz"


def array_key(quality: ArmQuality, array: str) -> str:
    """`<generator>|<ratio>|<seed>|<array>`, as predictions are keyed."""
    return prediction_key(quality.generator, quality.ratio, quality.seed, array)


def write_assessed(arrays: dict[str, np.ndarray]) -> bytes:
    """The npz's bytes (compressed): features as float32, images in [0, 1] as the 16-bit values a cache stores."""
    stored = {key: to_uint16(value) if key.endswith(f"|{IMAGES}") else value.astype(np.float32)
              for key, value in arrays.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **stored)
    return buffer.getvalue()


def read_assessed(path: Path) -> dict[str, np.ndarray]:
    """`key -> array` from an entry's file: a regular file that unpacks to at most MAX_ASSESSED_BYTES, no pickles,
    features float32 (N, D) and images uint16 (N, H, W); raises OSError or ValueError naming what is wrong."""
    try:
        arrays = load_npz(read_bounded(path, MAX_ASSESSED_BYTES), MAX_ASSESSED_BYTES)
    except ValueError as error:
        raise ValueError(f"not an npz archive of assessed sets under {MAX_ASSESSED_BYTES:,} bytes ({error})") from None
    for key, array in arrays.items():
        kind = key.rsplit("|", 1)[-1]
        expected = {FEATURES: (np.float32, 2), IMAGES: (np.uint16, 3)}.get(kind)
        if expected is None:
            raise ValueError(f"{key}: unknown array (expected <generator>|<ratio>|<seed>|{FEATURES} or |{IMAGES})")
        if array.dtype != expected[0] or array.ndim != expected[1]:
            raise ValueError(f"{key}: expected {np.dtype(expected[0]).name} with {expected[1]} dimensions, got "
                             f"{array.dtype} {array.shape}")
    return arrays


def as_floats(images: np.ndarray) -> np.ndarray:
    """Stored 16-bit images as the float32 values in [0, 1] the run's cache gave its extractor."""
    return images.astype(np.float32) / 65535.0


def publishable(quality: ArmQuality, *, images: bool, groups: bool) -> ArmQuality:
    """The arm's quality as an entry may state it: only what CI can recompute from the entry. Without images, no
    pixel-space memorisation and no re-identification; without condition groups CI can recompute (a generator that
    draws real images from a pool picks its own conditions), no per-group fidelity."""
    update: dict = {} if groups else {"fidelity_by_group": {}}
    if not images:
        update |= {"memorisation": {k: v for k, v in quality.memorisation.items() if k != "pixels"},
                   "reidentification": None, "no_reidentification": NO_IMAGES}
    return quality.model_copy(update=update)
