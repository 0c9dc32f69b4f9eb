"""Arrays stacked along their rows without copying them: a synthetic arm's training images.

A synthetic arm trains on the real training split followed by its synthetic set. At paper scale the real split is a
read-only memory map of 38 GB (CheXpert's 191,027 frontal images at 224 px, `tasks.real.pixels`); `np.concatenate`
would read all of it into memory in every cell. `StackedRows` keeps the parts and gathers the rows a step asks for
from whichever part holds them, with the same values as the concatenated array, so a cell's training is bit-equal
either way. Dask and xarray stack lazily too, but would be a dependency for three indexing forms.
"""

from __future__ import annotations

import numpy as np


class StackedRows:
    """The parts' rows one after another, read on demand. It answers what the downstream recipes ask of their
    training images: `len`, `shape`, `ndim`, `dtype`; rows by integer, slice, integer or boolean array; `[:, None]`
    (a channel axis on every part); and `np.asarray` for anything else (which then copies, as concatenating does)."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        if not parts:
            raise ValueError("StackedRows needs at least one part")
        if len({part.shape[1:] for part in parts}) != 1:
            raise ValueError(f"parts differ in row shape: {[part.shape[1:] for part in parts]}")
        self.parts = list(parts)
        self.dtype = np.result_type(*(part.dtype for part in parts))
        self._starts = np.cumsum([0] + [len(part) for part in parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.parts[0].shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key):
        if isinstance(key, tuple) and key and isinstance(key[0], slice) and key[0] == slice(None):
            return StackedRows([part[(slice(None), *key[1:])] for part in self.parts])
        if isinstance(key, (int, np.integer)):
            row = int(key) + len(self) if key < 0 else int(key)
            if not 0 <= row < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            part = int(np.searchsorted(self._starts, row, side="right")) - 1
            return self.parts[part][row - self._starts[part]]
        if isinstance(key, slice):
            return self._gather(np.arange(len(self))[key])
        index = np.asarray(key)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise IndexError(f"boolean index of shape {index.shape} for {len(self)} rows")
            return self._gather(np.flatnonzero(index))
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise IndexError(f"StackedRows takes an int, a slice, a 1-d int or bool array or [:, ...]; got {key!r}")
        return self._gather(index)

    def _gather(self, index: np.ndarray) -> np.ndarray:
        """The rows at `index` (in its order) as one array: each part is read once, at its own rows."""
        index = np.where(index < 0, index + len(self), index)
        if len(index) and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        out = np.empty((len(index), *self.shape[1:]), self.dtype)
        owner = np.searchsorted(self._starts, index, side="right") - 1
        for part_number, part in enumerate(self.parts):
            chosen = np.flatnonzero(owner == part_number)
            if len(chosen):
                out[chosen] = part[index[chosen] - self._starts[part_number]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:  # numpy 2's protocol: a view was asked for, and the parts are not one block of memory
            raise ValueError("StackedRows cannot be one array without a copy")
        whole = np.concatenate(self.parts).astype(self.dtype, copy=False)
        return whole if dtype is None else whole.astype(dtype, copy=False)
