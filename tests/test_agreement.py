"""Conditioning agreement: a judge trained on real data must find what the oracle was asked for, not noise's."""

from __future__ import annotations

import pytest

from cxrbench.agreement import measure_agreement, shuffled_requests
from cxrbench.task_data import load_splits
from cxrbench.schemas import RunConfig


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("agreement-cache")


def _agreement(generator: str, cache_root):
    config = RunConfig(tasks=["phantom_cls"], generators=[generator], ratios=[0.25])
    return measure_agreement("phantom_cls", generator, cache_root, config=config)


@pytest.fixture(scope="module")
def oracle(cache_root):
    return _agreement("oracle", cache_root)


def test_the_judge_finds_the_oracles_labels_far_above_chance(oracle):
    result = oracle
    assert result.n_images == 50 and result.judge_seed not in range(10)
    assert result.matched > result.shuffled + 0.15
    assert result.real_test > 0.5


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
