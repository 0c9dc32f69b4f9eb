"""Memorisation: nearest training images (exact, also for near-copies), the threshold calibrated on real test images,
the share below it for a copying generator and for an honest one, the closest pairs, and clear errors."""

import numpy as np
import pytest

from cxrbench.errors import ConfigError, DataError
from cxrbench.fidelity.memorisation import MemorisationResult, Nearest, memorisation, nearest_training

DIM = 32


def _population(n, seed):
    return np.random.default_rng(seed).normal(size=(n, DIM))


@pytest.fixture(scope="module")
def split():
    """Training and test images drawn from one distribution, as a task's real splits are."""
    return _population(400, 0), _population(400, 1)


def _result(synthetic, split, **options):
    training, test = split
    return memorisation(nearest_training(synthetic, training, "synthetic images"), nearest_training(test, training),
                        space="features:test", **options)


def test_the_nearest_training_image_is_found_exactly():
    training, queries = _population(300, 2), _population(50, 3)
    distances = np.linalg.norm(queries[:, None] - training[None], axis=2)
    nearest = nearest_training(queries, training)
    assert nearest.index.tolist() == distances.argmin(axis=1).tolist()
    np.testing.assert_allclose(nearest.distance, distances.min(axis=1), rtol=1e-12)
    assert nearest.n_training == 300


def test_near_copies_keep_their_small_distances():
    """Pixels of large magnitude: |x|² + |y|² - 2x·y would round a 1e-4 difference to nothing (or to noise)."""
    training = np.random.default_rng(4).uniform(0, 255, size=(100, 4096)).astype(np.float32)
    copies = training[:10] + np.float32(1e-2)
    nearest = nearest_training(copies, training)
    assert nearest.index.tolist() == list(range(10))
    np.testing.assert_allclose(nearest.distance, 1e-2 * np.sqrt(4096), rtol=1e-2)


def test_uint8_pixels_are_searched_as_numbers():
    training = np.random.default_rng(5).integers(0, 256, size=(50, 64), dtype=np.uint8)
    nearest = nearest_training(training[[3, 7]], training)
    assert nearest.index.tolist() == [3, 7] and nearest.distance.tolist() == [0.0, 0.0]


def test_a_copying_generator_puts_nearly_all_its_images_below_the_threshold(split):
    training, _ = split
    rng = np.random.default_rng(6)
    copies = training[rng.integers(0, len(training), 300)] + rng.normal(scale=0.05, size=(300, DIM))
    result = _result(copies, split)
    assert result.share_below.value == 1.0
    assert result.share_below.ci_low > 0.95 > 10 * result.expected_share
    assert result.p_value < 1e-10
    assert result.synthetic_distances.p95 < result.threshold < result.test_distances.median


def test_an_honest_generator_lands_near_the_quantile_and_is_not_flagged(split):
    result = _result(_population(400, 7), split)
    assert result.rank == 20 and result.expected_share == 20 / 401
    assert abs(result.share_below.value - 0.05) < 0.03 and result.p_value > 0.05


def test_the_p_value_holds_its_level_where_the_share_interval_alone_would_not():
    """Synthetic and test distances exchangeable (an honest generator): p < 0.05 in about 5% of draws. The share's
    Wilson interval ignores the threshold's sampling error and misses the expected share about three times as often."""
    rng = np.random.default_rng(10)
    p_values, misses = [], 0
    for _ in range(200):
        distances = rng.exponential(size=600)
        result = memorisation(Nearest(distances[:300], np.zeros(300, int), 50),
                              Nearest(distances[300:], np.zeros(300, int), 50), space="pixels")
        p_values.append(result.p_value)
        misses += not result.share_below.ci_low <= result.expected_share <= result.share_below.ci_high
    assert np.mean(np.array(p_values) < 0.05) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)
    assert misses / 200 > 0.1


def test_the_threshold_is_the_test_quantile_and_the_closest_pairs_come_nearest_first(split):
    training, test = split
    synthetic = np.concatenate([_population(50, 8), training[[11, 12]] + 0.01])
    result = _result(synthetic, split, quantile=0.1, n_pairs=3)
    assert result.rank == 40
    assert result.threshold == np.sort(nearest_training(test, training).distance)[39]
    assert [(pair.synthetic, pair.training) for pair in result.closest_pairs[:2]] in (
        [(50, 11), (51, 12)], [(51, 12), (50, 11)])
    distances = [pair.distance for pair in result.closest_pairs]
    assert len(distances) == 3 and distances == sorted(distances)
    assert MemorisationResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("options, error, message", [
    (dict(quantile=0.0), ConfigError, "quantile: expected a share in (0, 0.5] of test images, got 0.0"),
    (dict(quantile=0.7), ConfigError, "quantile: expected a share in (0, 0.5] of test images, got 0.7"),
    (dict(confidence=1.0), ConfigError, "confidence: expected a level in (0, 1), got 1.0"),
    (dict(n_pairs=-1), ConfigError, "n_pairs: expected a number of pairs >= 0, got -1"),
    (dict(quantile=0.001), DataError, "test images: 400 cannot calibrate the 0.001 quantile threshold; need at "
                                      "least 1000 (1 / quantile)"),
])
def test_bad_options_are_refused_in_one_line(split, options, error, message):
    with pytest.raises(error) as caught:
        _result(_population(20, 9), split, **options)
    assert str(caught.value) == message


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("queries, training, message", [
    (np.zeros((5, 3)), np.zeros((5, 4)), "synthetic images: 3 values per image, the training images have 4; both "
                                         "must be in the same space"),
    (np.full((5, 4), np.nan), np.zeros((5, 4)), "synthetic images: 5 row(s) hold NaN or infinite values (first: "
                                                "row 0)"),
    (np.zeros((5, 4)), np.zeros((0, 4)), "training images: expected a 2-D array (images × features) with at least "
                                         "one of each, got shape (0, 4)"),
])
def test_bad_arrays_are_refused_in_one_line(queries, training, message):
    with pytest.raises(DataError) as caught:
        nearest_training(queries, training, "synthetic images")
    assert str(caught.value) == message


@pytest.mark.reliability("bad_input")
def test_synthetic_and_test_images_must_be_searched_against_the_same_training_set():
    one = Nearest(distance=np.ones(30), index=np.zeros(30, int), n_training=100)
    other = Nearest(distance=np.ones(30), index=np.zeros(30, int), n_training=90)
    with pytest.raises(DataError) as caught:
        memorisation(one, other, space="pixels")
    assert str(caught.value) == ("memorisation: the synthetic images were searched against 100 training images, the "
                                 "test images against 90; use the same training set")
