"""Conditioning agreement: a judge trained on real data must find what the oracle was asked for, not noise's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cxrbench.agreement import measure_agreement, shuffled_requests
from cxrbench.registry import get_task
from cxrbench.schemas import RunConfig
from cxrbench.task_data import load_splits


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("agreement-cache")


def _agreement(generator: str, cache_root):
    config = RunConfig(tasks=["phantom_cls"], generators=[generator], ratios=[0.25], regimes=["full"])
    return measure_agreement("phantom_cls", generator, cache_root, config=config)


@pytest.fixture(scope="module")
def oracle(cache_root):
    return _agreement("oracle", cache_root)


def test_the_judge_finds_the_oracles_labels_far_above_chance(oracle):
    result = oracle
    assert result.n_images == 50
    assert result.matched > result.shuffled + 0.15
    assert result.real_test > 0.6  # measured 0.69; predicting every finding everywhere scores 0.46


def test_the_judge_is_trained_with_its_own_seed_not_a_run_seed(cache_root, monkeypatch):
    """The reported judge_seed is the seed the judge trains with (its real-test score is reproduced with it), and
    a run seed's model on the same data (the real_only baseline's) is another model, so the judge is not one of
    the models the run compares. A short schedule keeps it quick: models of different seeds still differ."""
    task = get_task("phantom_cls")
    monkeypatch.setattr(type(task), "schedule", replace(task.schedule, steps=10))
    result = _agreement("noise", cache_root)
    splits = load_splits("phantom_cls", None, task.meta.regimes["full"])

    def real_test(seed: int) -> float:
        scores = task.case_metric(task.train_and_predict(splits.train, splits, seed=seed, device="cpu"), splits)
        return scores.metric.value()

    assert real_test(result.judge_seed) == pytest.approx(result.real_test, abs=1e-12)
    assert result.judge_seed not in range(task.meta.default_seeds)
    assert real_test(result.synthetic_seed) != pytest.approx(result.real_test, abs=1e-6)


def test_noise_carries_no_information_about_its_labels(cache_root, oracle):
    result = _agreement("noise", cache_root)
    assert result.matched - result.shuffled < 0.1
    assert result.matched < oracle.matched


def test_shuffling_permutes_requests_but_keeps_images():
    train = load_splits("phantom_cls", None, 40).train
    shuffled = shuffled_requests(train, seed=0)
    assert (shuffled.images == train.images).all()
    assert sorted(map(tuple, shuffled.labels.tolist())) == sorted(map(tuple, train.labels.tolist()))
    assert (shuffled.labels != train.labels).any()
