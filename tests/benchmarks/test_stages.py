"""Stage costs of an embedded run, and the vectorised bootstrap against sklearn side by side.

Run with `pytest tests/benchmarks --benchmark-enable`; in the normal suite each body runs once as a smoke test.
"""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from cxrbench.registry import get_task
from cxrbench.stats import MacroF1, patient_bootstrap_weights
from cxrbench.task_data import load_splits

N_BOOT = 200


@pytest.fixture(scope="module")
def f1_case():
    rng = np.random.default_rng(0)
    target = rng.random((600, 4)) < 0.3
    pred = np.where(rng.random((600, 4)) < 0.8, target, ~target)
    patients = np.array([f"P{i // 2}" for i in range(600)])
    return pred, target, patient_bootstrap_weights(patients, N_BOOT, rng)


def test_bootstrap_f1_vectorised(benchmark, f1_case):
    pred, target, weights = f1_case
    benchmark.group = "bootstrap macro F1, 200 resamples"
    scores = benchmark(MacroF1(pred, target).weighted, weights)
    assert scores.shape == (N_BOOT,)


def test_bootstrap_f1_sklearn_per_resample(benchmark, f1_case):
    pred, target, weights = f1_case
    benchmark.group = "bootstrap macro F1, 200 resamples"

    def loop():
        return np.array([f1_score(target, pred, average="macro", sample_weight=w, zero_division=0) for w in weights])

    plain = benchmark(loop)
    np.testing.assert_allclose(plain, MacroF1(pred, target).weighted(weights), atol=1e-6)


@pytest.mark.parametrize("task", ["phantom_cls", "phantom_seg"])
def test_stage_task_data(benchmark, task):
    benchmark.group = "stage: task data"
    splits = benchmark.pedantic(get_task(task).load, args=(None,), rounds=1, iterations=1)
    assert len(splits.test) > 0


@pytest.mark.parametrize("task", ["phantom_cls", "phantom_seg"])
def test_stage_conditions_and_oracle(benchmark, task):
    benchmark.group = "stage: 200 conditions + oracle images"
    the_task = get_task(task)
    splits = load_splits(task, None, None)

    def make():
        return the_task.simulate(the_task.conditions(splits.train, 200, seed=0), seed=0)

    images = benchmark.pedantic(make, rounds=1, iterations=1)
    assert images.shape == (200, 64, 64)


@pytest.mark.parametrize("task", ["phantom_cls", "phantom_seg"])
def test_stage_downstream_cell(benchmark, task):
    """One downstream training on 48 real images (the default recipe's fixed number of steps), then prediction."""
    benchmark.group = "stage: downstream cell, 48 training images"
    the_task = get_task(task)
    splits = load_splits(task, None, 48)
    predictions = benchmark.pedantic(the_task.train_and_predict, args=(splits.train, splits),
                                     kwargs={"seed": 0, "device": "cpu"}, rounds=1, iterations=1)
    assert 0 <= the_task.case_metric(predictions, splits).metric.value() <= 1
