"""What a loader finds in a dataset's metadata: one `Study` per image, with where it came from and its mask source.

Loaders only parse metadata into studies; reading and resizing pixels is shared (`pixels.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cxrbench.errors import DataError

from .confined import read_bytes
from .decode import decode_image
from .rle import GRID, union_of


class MaskSource(Protocol):
    def identity(self) -> str:
        """What the mask is made of (enters the pixel cache key)."""

    def read(self, shape: tuple[int, int]) -> np.ndarray:
        """The full-resolution boolean mask for an image of `shape` (H, W)."""

    def content_sha256(self) -> str:
        """What the mask is, by content (the known-copy check of `copies.verify`)."""


@dataclass(frozen=True)
class Study:
    image: Path
    patient_id: str
    sample_id: str
    labels: tuple[int, ...]
    where: str
    """Which file and row described this image, for error messages."""
    mask: MaskSource | None = None


@dataclass(frozen=True)
class MaskFile:
    """A lung mask the same size as its X-ray (COVID lungs): 255 = lung, 0 = background.

    A mask with no lung pixel is refused: every frontal chest X-ray shows lungs, so an empty mask is a missing or
    broken annotation (often one drawn with 1 instead of 255), and training on it would teach "no lungs here"."""

    path: Path
    where: str

    def identity(self) -> str:
        return f"file:{self.path.name}:{_stat(self.path, self.where)}"

    def read(self, shape: tuple[int, int]) -> np.ndarray:
        mask = decode_image(self._bytes(), self.path, self.where) > 0.5
        if mask.shape != shape:
            raise DataError(f"{self.where}: mask {self.path} is {mask.shape[1]}x{mask.shape[0]} pixels, "
                            f"its image is {shape[1]}x{shape[0]}")
        if not mask.any():
            raise DataError(f"{self.where}: mask {self.path} marks no lung pixel (lung = 255); every frontal chest "
                            "X-ray has lungs, so the annotation is missing or broken")
        return mask

    def content_sha256(self) -> str:
        return hashlib.sha256(self._bytes()).hexdigest()

    def _bytes(self) -> bytes:
        return read_bytes(self.path, self.where, "mask file")


@dataclass(frozen=True)
class RleMask:
    """Run-length regions on the 1024 x 1024 grid (SIIM, CANDID-PTX), united; no rows = empty mask."""

    rows: tuple[tuple[str, str], ...]

    def identity(self) -> str:
        return "rle:" + "|".join(value for value, _ in self.rows)

    def read(self, shape: tuple[int, int]) -> np.ndarray:
        if shape != (GRID, GRID):
            where = self.rows[0][1] if self.rows else "RLE mask"
            raise DataError(f"{where}: image is {shape[1]}x{shape[0]} pixels, the RLE grid is {GRID}x{GRID}")
        return union_of(list(self.rows), shape=shape)

    def content_sha256(self) -> str:
        return hashlib.sha256(self.identity().encode()).hexdigest()


@dataclass(frozen=True)
class BoxMask:
    """Boxes (x, y, width, height) in the pixel coordinates of the image (RSNA)."""

    boxes: tuple[tuple[float, float, float, float], ...]
    where: str

    def identity(self) -> str:
        return f"boxes:{self.boxes}"

    def read(self, shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, dtype=bool)
        for x, y, width, height in self.boxes:
            if x < 0 or y < 0 or x + width > shape[1] or y + height > shape[0]:
                raise DataError(f"{self.where}: box {(x, y, width, height)} lies outside the "
                                f"{shape[1]}x{shape[0]} image")
            mask[int(y): int(round(y + height)), int(x): int(round(x + width))] = True
        return mask

    def content_sha256(self) -> str:
        return hashlib.sha256(self.identity().encode()).hexdigest()


def _stat(path: Path, where: str) -> str:
    try:
        stat = path.lstat()
    except OSError:
        raise DataError(f"{where}: file {path} does not exist") from None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def file_identity(study: Study) -> str:
    """Name, size and modification time: a changed file gets new pixels without hashing every image."""
    mask = study.mask.identity() if study.mask is not None else "-"
    return f"{study.sample_id}|{study.image.name}|{_stat(study.image, study.where)}|{mask}"
