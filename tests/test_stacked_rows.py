"""`StackedRows` gives the very rows `np.concatenate` gives, for every indexing form the recipes use, and refuses
the rest by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrbench.errors import DataError
from cxrbench.samples import SampleSet
from cxrbench.stacked_rows import StackedRows


def _parts(sizes: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((size, 3, 2), dtype=np.float32) for size in sizes]


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 6), min_size=1, max_size=4), seed=st.integers(0, 2**16), data=st.data())
def test_every_index_form_gives_the_concatenated_rows(sizes, seed, data):
    parts = _parts(sizes, seed)
    whole, stacked = np.concatenate(parts), StackedRows(parts)
    n = len(whole)
    assert len(stacked) == n and stacked.shape == whole.shape and stacked.ndim == 3 and stacked.dtype == whole.dtype
    np.testing.assert_array_equal(np.asarray(stacked), whole)
    np.testing.assert_array_equal(np.asarray(stacked[:, None]), whole[:, None])
    assert stacked[:, None].shape == whole[:, None].shape
    if n:
        rows = data.draw(st.lists(st.integers(-n, n - 1), max_size=12))
        np.testing.assert_array_equal(stacked[np.array(rows, dtype=np.int64)], whole[np.array(rows, dtype=np.int64)])
        np.testing.assert_array_equal(stacked[:, None][np.array(rows, dtype=np.int64)],
                                      whole[:, None][np.array(rows, dtype=np.int64)])
        row = data.draw(st.integers(-n, n - 1))
        np.testing.assert_array_equal(stacked[row], whole[row])
        mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        np.testing.assert_array_equal(stacked[mask], whole[mask])
    start, stop, step = (data.draw(st.one_of(st.none(), st.integers(-8, 8))) for _ in range(3))
    key = slice(start, stop, step or None)
    np.testing.assert_array_equal(stacked[key], whole[key])


def test_out_of_range_and_unknown_indexes_are_refused_by_name():
    stacked = StackedRows(_parts([2, 3], 0))
    with pytest.raises(IndexError, match="row 5 out of range for 5 rows"):
        stacked[5]
    with pytest.raises(IndexError, match="out of range for 5 rows"):
        stacked[np.array([0, 5])]
    with pytest.raises(IndexError, match="boolean index of shape"):
        stacked[np.array([True, False])]
    with pytest.raises(IndexError, match="StackedRows takes"):
        stacked[np.array([[0]])]
    with pytest.raises(ValueError, match="cannot be one array without a copy"):
        np.asarray(stacked, copy=False)
    with pytest.raises(ValueError, match="parts differ in row shape"):
        StackedRows([np.zeros((1, 2, 2)), np.zeros((1, 3, 2))])


def test_concat_stacks_sets_without_copying_their_images():
    real, synthetic = _parts([4, 2], 1)
    ids = np.array(["a", "b", "c", "d"])
    first = SampleSet(real, np.zeros((4, 1), np.int8), real > 0.5, ids, ids)
    second = SampleSet(synthetic, np.ones((2, 1), np.int8), synthetic > 0.5, ids[:2], np.array(["s1", "s2"]))
    both = SampleSet.concat([first, second])
    assert both.images.parts[0] is real and both.masks.parts[1].shape == (2, 3, 2)
    np.testing.assert_array_equal(both.subset([5, 0]).images, np.concatenate([real, synthetic])[[5, 0]])
    np.testing.assert_array_equal(both[4].mask, synthetic[0] > 0.5)
    with pytest.raises(DataError, match="cannot mix sets with and without masks"):
        SampleSet.concat([first, SampleSet(synthetic, second.labels, None, second.patient_ids, second.sample_ids)])
