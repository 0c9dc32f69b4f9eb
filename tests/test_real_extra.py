"""The real_extra control: real training images from outside the regime's subset, never val or test."""

import numpy as np
import pytest

from cxrbench.conditions import LabelCondition
from cxrbench.errors import GeneratorError
from cxrbench.registry import generator_class, get_task


@pytest.mark.parametrize("task_name", ["phantom_cls", "phantom_seg"])
def test_the_pool_is_training_patients_outside_the_subset(task_name):
    task = get_task(task_name)
    size = task.meta.regimes["scarce"]
    splits = task.load(None, train_size=size)
    pool = task.pool(None, train_size=size)
    patients = {name: set(getattr(splits, name).patient_ids.tolist()) for name in ("train", "val", "test")}
    assert len(splits.train) == size and len(pool) > 0
    assert not set(pool.patient_ids.tolist()) & (patients["train"] | patients["val"] | patients["test"])
    everything = task.load(None, train_size=None).train
    # every training patient is in the subset or the pool (the subset's last patient may be cut to fit)
    assert patients["train"] | set(pool.patient_ids.tolist()) == set(everything.patient_ids.tolist())
    assert len(everything) - 2 <= len(pool) + len(splits.train) <= len(everything)  # at most 3 studies a patient
    assert len(task.pool(None, train_size=None)) == 0


def test_draws_distinct_pool_images_with_the_labels_they_really_carry():
    task = get_task("phantom_cls")
    size = task.meta.regimes["scarce"]
    splits = task.load(None, train_size=size)
    pool = task.pool(None, train_size=size)
    conditions = task.conditions(splits.train, 50, seed=3)
    generator = generator_class("real_extra")(task.meta)
    images, shown = generator.draw(conditions, pool, seed=3)
    rows = [int(np.flatnonzero((pool.images == image).all(axis=(1, 2)))[0]) for image in images]
    assert len(set(rows)) == len(rows)  # no image twice
    for row, condition in zip(rows, shown, strict=True):
        assert [condition.labels[name] for name in task.meta.labels] == pool.labels[row].tolist()
    matched = sum(a.labels == b.labels for a, b in zip(conditions, shown, strict=True))
    assert matched == len(conditions)  # the pool has every label vector the subset has, so the mix is kept
    again, _ = generator.draw(conditions, pool, seed=3)
    assert np.array_equal(images, again)


def test_segmentation_draws_carry_their_own_masks():
    task = get_task("phantom_seg")
    size = task.meta.regimes["scarce"]
    pool = task.pool(None, train_size=size)
    conditions = task.conditions(task.load(None, train_size=size).train, 20, seed=0)
    images, shown = generator_class("real_extra")(task.meta).draw(conditions, pool, seed=0)
    row_of = {sid: i for i, sid in enumerate(pool.sample_ids.tolist())}
    for image, condition in zip(images, shown, strict=True):
        row = row_of[condition.source_id]
        assert np.array_equal(pool.images[row], image) and np.array_equal(pool.masks[row], condition.mask)


def test_a_pool_too_small_for_the_arm_is_an_error_naming_both_sizes():
    task = get_task("phantom_cls")
    pool = task.pool(None, train_size=task.meta.regimes["scarce"]).subset(range(3))
    with pytest.raises(GeneratorError, match="pool holds 3 real images, the arm asks for 5"):
        generator_class("real_extra")(task.meta).draw([LabelCondition(labels={})] * 5, pool, seed=0)
