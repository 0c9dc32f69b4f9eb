"""The generator's own checks: shape, range, labels kept, determinism per seed, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from cxrbench_mixup import Mixup

from cxrbench.conditions import LabelCondition
from cxrbench.samples import SampleSet
from cxrbench.schemas import TaskMeta

TASK = TaskMeta(name="toy", version="1", suite="toy", kind="classification", labels=["finding"],
                metric="macro_f1", resolution=8, description="toy", data_source="made here", split_rule="none",
                regimes={"all": None}, default_ratios=[1.0], default_seeds=2)


def _train(rows: int = 6) -> SampleSet:
    """Label 1 images are bright (0.8), label 0 images dark (0.2): a mix of one label stays on its side."""
    labels = np.array([[i % 2] for i in range(rows)], np.int8)
    images = np.where(labels[:, :, None] == 1, 0.8, 0.2) * np.ones((rows, 8, 8), np.float32)
    ids = np.array([f"case{i}" for i in range(rows)])
    return SampleSet(images.astype(np.float32), labels, None, ids, ids)


@pytest.fixture()
def fitted(tmp_path) -> Mixup:
    generator = Mixup(TASK)
    generator.fit(_train(), seed=0, workdir=tmp_path)
    return generator


def test_images_have_the_shape_range_and_labels_asked_for(fitted):
    conditions = [LabelCondition(labels={"finding": i % 2}) for i in range(10)]
    images = fitted.generate(conditions, seed=3)
    assert images.shape == (10, 8, 8) and images.dtype == np.float32
    assert np.allclose(images[0::2], 0.2) and np.allclose(images[1::2], 0.8)


def test_same_seed_same_images_other_seed_other_images(tmp_path):
    generator = Mixup(TASK)
    images = np.random.default_rng(0).uniform(size=(6, 8, 8)).astype(np.float32)
    ids = np.array([f"case{i}" for i in range(6)])
    generator.fit(SampleSet(images, np.zeros((6, 1), np.int8), None, ids, ids), seed=0, workdir=tmp_path)
    conditions = [LabelCondition(labels={"finding": 0})] * 4
    first = generator.generate(conditions, seed=1)
    assert np.array_equal(first, generator.generate(conditions, seed=1))
    assert not np.array_equal(first, generator.generate(conditions, seed=2))


def test_save_then_load_gives_the_same_images(fitted, tmp_path):
    fitted.save(tmp_path)
    loaded = Mixup(TASK)
    loaded.load(tmp_path)
    conditions = [LabelCondition(labels={"finding": 1})] * 3
    assert np.array_equal(loaded.generate(conditions, seed=5), fitted.generate(conditions, seed=5))
