"""The versioned patient-level split rule: a patient's split is a pure function of its id.

Hashing ids (rather than shuffling a list) means any copy or subset of a dataset puts each patient
in the same split, and a patient can never straddle two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

SPLIT_RULE = "sha256('cxrbench-split-v1:' + patient_id) -> u in [0,1): train u<0.6, val u<0.75, else test"
_SALT = "cxrbench-split-v1:"
_BOUNDS = (("train", 0.6), ("val", 0.75), ("test", 1.0))


def patient_unit(patient_id: str) -> float:
    digest = hashlib.sha256((_SALT + patient_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(patient_id: str) -> str:
    u = patient_unit(patient_id)
    return next(name for name, bound in _BOUNDS if u < bound)


def split_indices(patient_ids: Iterable[str]) -> dict[str, np.ndarray]:
    """Row indices of each split for a column of patient ids."""
    names = np.array([split_of(str(p)) for p in patient_ids])
    return {name: np.flatnonzero(names == name) for name, _ in _BOUNDS}


def fixed_train_subset(patient_ids: np.ndarray, train_size: int | None) -> np.ndarray:
    """The protocol's low-data training set: whole patients in hash order until `train_size` images.

    Taking patients in hash order keeps the subset nested (a larger size contains a smaller one).
    """
    if train_size is None or train_size >= len(patient_ids):
        return np.arange(len(patient_ids))
    order = sorted(set(patient_ids.tolist()), key=lambda p: hashlib.sha256(("subset:" + p).encode()).digest())
    keep: list[int] = []
    rows_of = {p: np.flatnonzero(patient_ids == p) for p in order}
    for patient in order:
        if len(keep) >= train_size:
            break
        keep.extend(rows_of[patient].tolist())
    return np.sort(np.asarray(keep[:train_size]))


def outside_subset(patient_ids: np.ndarray, train_size: int | None) -> np.ndarray:
    """The training rows a regime's subset leaves out: the pool real_extra draws from.

    Whole patients only: a patient with one study in the subset and another in the pool would
    give real_extra near-duplicates of training images."""
    kept = fixed_train_subset(patient_ids, train_size)
    inside = set(patient_ids[kept].tolist())
    return np.flatnonzero([p not in inside for p in patient_ids.tolist()])
