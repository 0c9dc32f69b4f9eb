"""The data a task hands around: a split as parallel arrays, one row per study.

Arrays rather than a list of per-image objects because every consumer (generators, downstream
training, scoring) works on whole batches; `SampleSet[i]` still gives one `Sample` for inspection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .stacked_rows import StackedRows

SYNTHETIC_ID_PREFIX = "synthetic/"
"""How a synthetic row's sample id starts (`synthetic.read_synthetic_set`), so a recipe can tell real rows apart."""


@dataclass(frozen=True)
class Sample:
    image: np.ndarray
    labels: np.ndarray
    mask: np.ndarray | None
    patient_id: str
    sample_id: str


@dataclass(frozen=True)
class SampleSet:
    """Images (N, H, W) float32 in [0, 1]; labels (N, L) int8; masks (N, H, W) bool or None. Images and masks are
    arrays, memory maps, or (after `concat`) `StackedRows` over them."""

    images: np.ndarray | StackedRows
    labels: np.ndarray
    masks: np.ndarray | StackedRows | None
    patient_ids: np.ndarray
    sample_ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 3:
            raise DataError(f"images must be (N, H, W), got shape {self.images.shape}")
        for name in ("labels", "patient_ids", "sample_ids"):
            if len(getattr(self, name)) != n:
                raise DataError(f"{name} has {len(getattr(self, name))} rows, images have {n}")
        if self.masks is not None and self.masks.shape != self.images.shape:
            raise DataError(f"masks shape {self.masks.shape} differs from images shape {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def real_rows(self) -> np.ndarray:
        """Indices of the rows that are real images (not from a synthetic set)."""
        return np.flatnonzero(~np.char.startswith(self.sample_ids.astype(str), SYNTHETIC_ID_PREFIX))

    @staticmethod
    def empty(size: int, n_labels: int, *, with_masks: bool) -> SampleSet:
        """No rows, with the shapes a set of `size` x `size` images with `n_labels` labels has."""
        none = np.array([], dtype=str)
        return SampleSet(np.zeros((0, size, size), np.float32), np.zeros((0, n_labels), np.int8),
                         np.zeros((0, size, size), bool) if with_masks else None, none, none)

    def __getitem__(self, i: int) -> Sample:
        mask = None if self.masks is None else self.masks[i]
        return Sample(self.images[i], self.labels[i], mask, str(self.patient_ids[i]), str(self.sample_ids[i]))

    def subset(self, index: Iterable[int] | np.ndarray) -> SampleSet:
        index = np.asarray(list(index) if not isinstance(index, np.ndarray) else index)
        masks = None if self.masks is None else self.masks[index]
        return SampleSet(self.images[index], self.labels[index], masks, self.patient_ids[index], self.sample_ids[index])

    @staticmethod
    def concat(parts: list[SampleSet]) -> SampleSet:
        """The parts' rows in order. Images and masks are stacked without a copy (`StackedRows`): a memory-mapped
        real split stays on disk, and training reads only its batches."""
        with_masks = [p.masks is not None for p in parts]
        if any(with_masks) and not all(with_masks):
            raise DataError("cannot mix sets with and without masks")
        masks = StackedRows([p.masks for p in parts]) if all(with_masks) else None
        return SampleSet(
            StackedRows([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            masks,
            np.concatenate([p.patient_ids for p in parts]),
            np.concatenate([p.sample_ids for p in parts]),
        )


@dataclass(frozen=True)
class Splits:
    train: SampleSet
    val: SampleSet
    test: SampleSet

    def __post_init__(self) -> None:
        check_patient_disjoint(self)


def check_patient_disjoint(splits: Splits) -> None:
    """Splits are by patient: a patient in two splits would leak test information into training."""
    names = ("train", "val", "test")
    sets = {n: set(getattr(splits, n).patient_ids.tolist()) for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = sets[a] & sets[b]
            if shared:
                example = sorted(shared)[:3]
                raise DataError(f"{len(shared)} patient(s) in both {a} and {b} splits, e.g. {example}")


def split_hash(splits: Splits) -> str:
    """A hash of which samples are in which split: a submission scored on another split cannot pass as current."""
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        digest.update(f"{name}:".encode() + "\n".join(getattr(splits, name).sample_ids.astype(str)).encode() + b";")
    return digest.hexdigest()[:32]
