"""The patient-level split rule: stable, disjoint by construction, and checked on every load."""

import numpy as np
import pytest

from cxrbench.errors import DataError
from cxrbench.samples import SampleSet, Splits
from cxrbench.tasks.splits import fixed_train_subset, split_indices, split_of


def _set(patients):
    n = len(patients)
    return SampleSet(np.zeros((n, 4, 4), np.float32), np.zeros((n, 1), np.int8), None,
                     np.array(patients), np.array([f"{p}_{i}" for i, p in enumerate(patients)]))


def test_split_is_a_function_of_the_patient():
    ids = [f"P{i}" for i in range(3000)]
    rows = split_indices(ids + ids[:10])
    assert sum(len(r) for r in rows.values()) == 3010
    fractions = {k: len(v) / 3010 for k, v in rows.items()}
    assert fractions["train"] == pytest.approx(0.6, abs=0.03) and fractions["test"] == pytest.approx(0.25, abs=0.03)
    for name, idx in rows.items():
        assert all(split_of((ids + ids[:10])[i]) == name for i in idx)
    # a patient's split does not depend on the other ids in the column nor on their order
    before = {(ids + ids[:10])[i]: name for name, idx in rows.items() for i in idx}
    column = list(np.random.default_rng(0).permutation(ids[::7])) + [f"Q{i}" for i in range(500)]
    after = {column[i]: name for name, idx in split_indices(column).items() for i in idx}
    assert all(after[p] == before[p] for p in ids[::7])


def test_overlapping_patients_are_rejected_with_names():
    with pytest.raises(DataError, match="both train and test.*P2"):
        Splits(train=_set(["P1", "P2"]), val=_set(["P3"]), test=_set(["P2", "P4"]))


def test_train_subset_is_nested_and_keeps_whole_patients_first():
    order = np.random.default_rng(0).permutation(100)  # a patient's two rows are not next to each other
    patients = np.array([f"P{i // 2}" for i in range(100)])[order]
    small, large = fixed_train_subset(patients, 20), fixed_train_subset(patients, 40)
    assert len(small) == 20 and len(large) == 40
    assert set(small) <= set(large)
    for subset in (small, large):  # whole patients: both rows of each chosen patient
        assert sorted(patients[subset]) == sorted(2 * list(set(patients[subset])))
    # the choice follows the patients, not the rows: the same patients when the rows come in another order
    reordered = patients[::-1]
    assert set(reordered[fixed_train_subset(reordered, 20)]) == set(patients[small])
    assert len(fixed_train_subset(patients, None)) == 100
