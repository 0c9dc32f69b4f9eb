"""What a patient verifier learns from and is tested on: pairs of studies of one patient or of two, drawn by one rule,
and the settings it trains with (a model a result records; the network itself is `reidentification_verifier`)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError, DataError


def verification_pairs(patient_ids: np.ndarray, *, seed: int, n_pairs: int,
                       name: str = "patient ids") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_pairs` pairs of rows, half of them two different studies of one patient (a patient with two or more drawn
    uniformly, then two of its studies), half studies of two different patients (two patients drawn uniformly, then a
    study of each), in a seeded random order: (first rows, second rows, same-patient flags). A row is never paired
    with itself; pairs repeat when there are fewer distinct ones than asked for."""
    if n_pairs < 2 or n_pairs % 2:
        raise ConfigError(f"n_pairs: expected an even number of pairs >= 2 (half same-patient), got {n_pairs}")
    patients, inverse, counts = np.unique(np.asarray(patient_ids).astype(str), return_inverse=True,
                                          return_counts=True)
    multi = np.flatnonzero(counts >= 2)
    if len(multi) < 2:
        raise DataError(f"{name}: {len(multi)} patient(s) with two or more studies among {len(patients)}; "
                        f"same-patient pairs need at least 2 such patients")
    by_patient = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    half = n_pairs // 2

    def study_of(patient: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return by_patient[starts[patient] + offset]

    same_patient = multi[rng.integers(len(multi), size=half)]
    first_study = rng.integers(counts[same_patient])
    second_study = (first_study + 1 + rng.integers(counts[same_patient] - 1)) % counts[same_patient]
    patient = rng.integers(len(patients), size=half)
    other = (patient + 1 + rng.integers(len(patients) - 1, size=half)) % len(patients)
    first = np.concatenate([study_of(same_patient, first_study), study_of(patient, rng.integers(counts[patient]))])
    second = np.concatenate([study_of(same_patient, second_study), study_of(other, rng.integers(counts[other]))])
    same = np.repeat([True, False], half)
    order = rng.permutation(n_pairs)
    return first[order], second[order], same[order]


def checked_images(images: np.ndarray, name: str) -> np.ndarray:
    """`images` as a finite (N, H, W) array with N ≥ 1 and pixels in [0, 1] (a task's images, what the verifier
    learnt from; 0-255 pixels would be another world to it), or a DataError naming `name`."""
    array = np.asarray(images)
    if array.ndim != 3 or 0 in array.shape or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name}: expected images as a numeric (N, H, W) array with N >= 1, got shape {array.shape} "
                        f"and dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise DataError(f"{name}: holds NaN or infinite pixels")
    if array.min() < 0 or array.max() > 1:
        raise DataError(f"{name}: expected pixel values in [0, 1] (the task's images), got {array.min():g} to "
                        f"{array.max():g}")
    return array


class VerifierSettings(BaseModel):
    """How long and how the verifier trains: part of its cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(800, ge=1, description="AdamW steps; each draws `batch_size` fresh pairs.")
    batch_size: int = Field(32, ge=2, multiple_of=2, description="Pairs per step (an even number: half of all "
                                                                  "training pairs are same-patient).")
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    embedding: int = Field(64, ge=1, description="Length of an image's embedding.")


TINY_VERIFIER = VerifierSettings(steps=150, batch_size=16)
"""For tests: seconds on one CPU thread at 64 px, still well above chance on the phantom patients."""
