"""Patient re-identification: balanced verification pairs, a verifier trained on phantom training patients that tells
unseen patients apart, a memorising set flagged and fresh patients not, the verifier cached, its seed reserved, and
clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cxrbench import reidentification_verifier as verifier_module
from cxrbench.cache import Cache
from cxrbench.errors import ConfigError, DataError
from cxrbench.fidelity.memorisation import nearest_training
from cxrbench.fidelity.patient_pairs import TINY_VERIFIER, VerifierSettings
from cxrbench.fidelity.reidentification import reidentification, verification_pairs, verifier_quality
from cxrbench.plan import checked_config, data_key
from cxrbench.protocol import REID_SEED
from cxrbench.registry import get_task
from cxrbench.reidentification_verifier import cached_verifier, train_verifier
from cxrbench.schemas import RunConfig
from cxrbench.task_data import load_splits

TRAIN_SIZE = 24
"""Phantom training images: 12 patients, 8 of them with two or three studies."""


@pytest.fixture(scope="module")
def splits():
    return load_splits("phantom_cls", None, TRAIN_SIZE)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("verifier-cache"))


@pytest.fixture(scope="module")
def verifier(splits, cache):
    return cached_verifier(splits.train, data_key(get_task("phantom_cls"), splits, None), cache, settings=TINY_VERIFIER)


def _nearest(images, training):
    """Each image's nearest training image in pixel space."""
    flat = training.reshape(len(training), -1)
    return training[nearest_training(images.reshape(len(images), -1), flat).index]


def _score(verifier, splits, images):
    training, test = splits.train.images, splits.test
    return reidentification(verifier, images, _nearest(images, training), test.images, _nearest(test.images, training),
                            test_patient_ids=test.patient_ids, n_pairs=400, n_boot=100)


def test_pairs_are_balanced_seeded_and_never_pair_a_study_with_itself(splits):
    ids = splits.train.patient_ids
    first, second, same = verification_pairs(ids, seed=3, n_pairs=400)
    assert same.sum() == 200 and len(first) == len(second) == 400
    assert (first != second).all()
    assert (same == (ids[first] == ids[second])).all()
    assert 0.35 < same[:200].mean() < 0.65  # shuffled, not all same-patient pairs first
    assert all((a == b).all() for a, b in zip((first, second, same), verification_pairs(ids, seed=3, n_pairs=400)))
    assert not (verification_pairs(ids, seed=4, n_pairs=400)[0] == first).all()


def test_the_verifier_tells_patients_it_never_saw_apart(verifier, splits):
    """Measured 0.754 [0.708, 0.808] on 1,000 test pairs (296 patients); chance is 0.5 with a standard error of
    about 0.02 at this many pairs, so 0.65 cannot be passed by chance."""
    quality = verifier_quality(verifier, splits.test.images, splits.test.patient_ids, n_pairs=1000, n_boot=200)
    assert quality.auc.value > 0.65 and quality.auc.ci_low > 0.6
    assert quality.auc.ci_low < quality.auc.value < quality.auc.ci_high
    assert quality.n_patients == len(np.unique(splits.test.patient_ids))


def test_a_memorising_set_is_flagged_and_fresh_patients_are_not(verifier, splits):
    training = splits.train.images
    noisy = np.clip(training + np.random.default_rng(0).normal(scale=0.02, size=training.shape), 0, 1)
    memorising = _score(verifier, splits, noisy.astype(np.float32))
    fresh = _score(verifier, splits, get_task("phantom_cls").fresh_patients(60).images)
    # measured: memorising 21 of 24 above (p 6e-13), fresh patients 5.2% of 115 (p 0.53), expected 5.1%
    assert memorising.share_above.ci_low > 5 * memorising.expected_share and memorising.p_value < 1e-6
    assert memorising.mean_probability > memorising.test_mean_probability
    assert fresh.share_above.value < 3 * fresh.expected_share and fresh.p_value > 0.01
    assert memorising.verifier_seed == REID_SEED and memorising.verifier_settings == TINY_VERIFIER
    assert memorising.rank == int(np.ceil(0.05 * len(splits.test)))


def test_the_cached_verifier_is_reused_not_retrained(verifier, splits, cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the verifier was trained again")

    monkeypatch.setattr(verifier_module, "train_verifier", refuse)
    again = cached_verifier(splits.train, data_key(get_task("phantom_cls"), splits, None), cache,
                            settings=TINY_VERIFIER)
    images = splits.test.images[:8]
    np.testing.assert_array_equal(again.logits(images, images[::-1]), verifier.logits(images, images[::-1]))
    assert len(list((cache.root / "verifier").glob("*/*"))) == 1


def test_training_is_deterministic(splits):
    settings = VerifierSettings(steps=3, batch_size=4)
    weights = [train_verifier(splits.train.images, splits.train.patient_ids, settings, seed=5,
                              device="cpu").network.state_dict() for _ in range(2)]
    assert all((weights[0][name] == weights[1][name]).all() for name in weights[0])


def test_the_verifiers_seed_is_not_a_run_seed():
    with pytest.raises(ConfigError, match="include 6001, which the protocol reserves .*re-identification verifier"):
        checked_config(RunConfig(tasks=["phantom_cls"], generators=["oracle"], first_seed=5_999, seeds=3))


@pytest.mark.reliability("bad_input")
def test_too_few_patients_with_two_studies_is_refused():
    with pytest.raises(DataError, match="training images: 1 patient\\(s\\) with two or more studies among 3"):
        train_verifier(np.zeros((4, 8, 8), np.float32), np.array(["a", "a", "b", "c"]), TINY_VERIFIER, seed=0,
                       device="cpu")
    with pytest.raises(ConfigError, match="even number of pairs"):
        verification_pairs(np.array(["a", "a", "b", "b"]), seed=0, n_pairs=3)


@pytest.mark.reliability("bad_input")
def test_mismatched_images_are_refused(verifier, splits):
    test = splits.test.images
    with pytest.raises(DataError, match="synthetic images: shape \\(5, 64, 64\\), their nearest training images "
                                        "\\(4, 64, 64\\)"):
        reidentification(verifier, test[:5], test[:4], test, test, test_patient_ids=splits.test.patient_ids)
    with pytest.raises(DataError, match="synthetic images are \\(32, 32\\) pixels, test images \\(64, 64\\)"):
        reidentification(verifier, test[:5, :32, :32], test[:5, :32, :32], test, test,
                         test_patient_ids=splits.test.patient_ids)
    with pytest.raises(DataError, match="test images: 582 images but 3 patient ids"):
        verifier_quality(verifier, test, splits.test.patient_ids[:3])
    with pytest.raises(DataError, match="training images: expected images as a numeric \\(N, H, W\\) array"):
        train_verifier(test[0], splits.test.patient_ids, TINY_VERIFIER, seed=0, device="cpu")
    eight_bit = np.zeros((2, 64, 64), np.uint8)
    eight_bit[1] = 255
    with pytest.raises(DataError, match="synthetic images: expected pixel values in \\[0, 1\\].*got 0 to 255"):
        reidentification(verifier, eight_bit, test[:2], test, test, test_patient_ids=splits.test.patient_ids)
