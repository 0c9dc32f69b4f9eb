"""SIIM-ACR / CANDID-PTX run-length masks: relative offsets on a column-major grid (1024 x 1024).

Tokens alternate (gap, run): the gap counts from the end of the previous run, pixels are counted
down the columns. Several rows for one image are several regions and are united.
"""

from __future__ import annotations

import numpy as np

from cxrbench.errors import DataError

GRID = 1024
EMPTY = "-1"


def decode_rle(encoded: str, where: str, *, shape: tuple[int, int] = (GRID, GRID)) -> np.ndarray:
    """One EncodedPixels value as a boolean (H, W) mask; '-1' is the empty mask."""
    text = str(encoded).strip()
    mask = np.zeros(shape[0] * shape[1], dtype=bool)
    if text in (EMPTY, ""):
        return mask.reshape(shape[1], shape[0]).T
    try:
        tokens = np.array([int(t) for t in text.split()], dtype=np.int64)
    except ValueError:
        raise DataError(f"{where}: EncodedPixels is not a list of integers: {text[:40]!r}") from None
    if len(tokens) % 2:
        raise DataError(f"{where}: EncodedPixels has an odd number of values ({len(tokens)}), "
                        "expected (gap, run) pairs")
    gaps, runs = tokens[0::2], tokens[1::2]
    if (gaps < 0).any() or (runs <= 0).any():
        raise DataError(f"{where}: EncodedPixels has a negative gap or a run that is not positive")
    ends = np.cumsum(gaps + runs)
    starts = ends - runs
    if ends[-1] > mask.size:
        raise DataError(f"{where}: EncodedPixels runs to pixel {int(ends[-1])}, "
                        f"outside the {shape[0]}x{shape[1]} image")
    for start, end in zip(starts, ends, strict=True):
        mask[start:end] = True
    return mask.reshape(shape[1], shape[0]).T


def union_of(rows: list[tuple[str, str]], *, shape: tuple[int, int] = (GRID, GRID)) -> np.ndarray:
    """The union of several (EncodedPixels, where) rows of one image."""
    mask = np.zeros(shape, dtype=bool)
    for value, where in rows:
        mask |= decode_rle(value, where, shape=shape)
    return mask
