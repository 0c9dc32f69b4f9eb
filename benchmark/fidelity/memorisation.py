"""Does a generator copy its training images? For every synthetic image its nearest real training image, and the
share of synthetic images closer to the training set than fresh real images are.

The threshold is calibrated on the real test images, which the generator never saw: it is the r-th smallest of their
distances to their nearest training image, r = ceil(quantile × n_test) (the `quantile`, e.g. 5th percentile, as an
order statistic). A synthetic image below it is closer to a training image than all but r - 1 test images are. A
generator whose images are as far from the training set as fresh real images (its distances exchangeable with the
test images') puts r / (n_test + 1) ≈ quantile of them below it on average; one that returns its training images
with slight noise puts nearly all of them there.

Two uncertainties: the share's Wilson interval (binomial over synthetic images) says how well this generator's share
is measured with the threshold held fixed; the p-value asks whether an honest generator could have put this many
images below, and also counts the threshold's own sampling error, as large as the share's when the two sets have
similar sizes: under exchangeability the count below the r-th test distance is beta-binomial (n_synthetic, r,
n_test - r + 1), exactly, whatever the distances' distribution. Comparing the share's interval with the quantile
instead would call an honest generator different more often than the interval's level says.

Distances are Euclidean in the space the caller chose (features of a named extractor, or flattened pixels), which
`space` records: numbers from two spaces are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import betabinom, binomtest
from sklearn.neighbors import NearestNeighbors

from ..errors import ConfigError, DataError
from .metrics import Estimate, feature_matrix

_EXACT_ROWS = 1024
"""Query rows per block when the distances are recomputed exactly (bounds the difference array's memory)."""


@dataclass(frozen=True)
class Nearest:
    """Per query image, its nearest training image: the distance and the training row."""

    distance: np.ndarray
    index: np.ndarray
    n_training: int


def nearest_training(queries: np.ndarray, training: np.ndarray, name: str = "queries") -> Nearest:
    """The nearest training image of each query image (rows of both arrays, same space).

    An exact brute-force search with sklearn's NearestNeighbors: trees do not help in hundreds or thousands of
    dimensions, and its search works through the query rows in chunks (sklearn's `working_memory`), so memory stays
    bounded at any set size, on every CPU core allowed. The search ranks by |x|² + |y|² - 2x·y, which rounds away
    the small distances of near-copies, exactly the ones this module looks for: the distance to the neighbour found
    is recomputed from the difference of the two vectors, in float64."""
    training = feature_matrix(training, "training images")
    queries = feature_matrix(queries, name)
    if queries.shape[1] != training.shape[1]:
        raise DataError(f"{name}: {queries.shape[1]} values per image, the training images have "
                        f"{training.shape[1]}; both must be in the same space")
    index = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(training).kneighbors(
        queries, return_distance=False)[:, 0]
    distance = np.concatenate([
        np.linalg.norm(queries[start:start + _EXACT_ROWS].astype(np.float64)
                       - training[index[start:start + _EXACT_ROWS]].astype(np.float64), axis=1)
        for start in range(0, len(queries), _EXACT_ROWS)])
    return Nearest(distance=distance, index=index, n_training=len(training))


class ClosestPair(BaseModel):
    """A synthetic image and its nearest training image, for the side-by-side figure."""

    model_config = ConfigDict(extra="forbid")

    synthetic: int = Field(description="Row of the synthetic image.")
    training: int = Field(description="Row of its nearest training image.")
    distance: float


class DistanceSummary(BaseModel):
    """Percentiles of a set's nearest-training distances."""

    model_config = ConfigDict(extra="forbid")

    min: float
    p05: float
    p25: float
    median: float
    p75: float
    p95: float

    @classmethod
    def of(cls, distances: np.ndarray) -> DistanceSummary:
        values = np.percentile(distances, [0, 5, 25, 50, 75, 95])
        return cls(**dict(zip(cls.model_fields, map(float, values))))


class MemorisationResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space: str = Field(description="Where distances were measured, e.g. `pixels` or the feature extractor's name.")
    n_synthetic: int
    n_test: int
    n_training: int
    quantile: float = Field(description="The test-distance quantile that sets the threshold.")
    rank: int = Field(description="r = ceil(quantile × n_test): the threshold is the r-th smallest test distance.")
    threshold: float = Field(description="The r-th smallest of the real test images' nearest-training distances.")
    share_below: Estimate = Field(description="Share of synthetic images nearer a training image than the "
                                              "threshold, with its Wilson interval.")
    confidence: float = Field(description="Coverage of `share_below`'s interval.")
    expected_share: float = Field(description="The mean share if synthetic images were as far from the training set "
                                              "as real test images: r / (n_test + 1), about the quantile.")
    p_value: float = Field(description="One-sided: the chance that a generator whose images are as far from the "
                                       "training set as real test images puts at least this many below the "
                                       "threshold (beta-binomial; the threshold's sampling error included).")
    synthetic_distances: DistanceSummary
    test_distances: DistanceSummary
    closest_pairs: list[ClosestPair] = Field(description="The synthetic images nearest a training image, nearest "
                                                         "first.")


@dataclass(frozen=True)
class CalibratedShare:
    """How many synthetic values fall below the threshold the test values calibrate (see the module's docstring)."""

    rank: int
    threshold: float
    share_below: Estimate
    expected_share: float
    p_value: float


def calibrated_share(synthetic: np.ndarray, test: np.ndarray, quantile: float, confidence: float,
                     test_name: str = "test images") -> CalibratedShare:
    """The share of `synthetic` values below the r-th smallest of `test`'s (r = ceil(quantile × n_test)), its
    Wilson interval, and the beta-binomial p-value of at least that many below under exchangeability. Smaller values
    are the suspicious ones: a caller whose larger values are (a same-patient score) passes both negated."""
    if not 0 < quantile <= 0.5:
        raise ConfigError(f"quantile: expected a share in (0, 0.5] of test images, got {quantile}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence: expected a level in (0, 1), got {confidence}")
    needed = int(np.ceil(1 / quantile - 1e-9))
    if len(test) < needed:
        raise DataError(f"{test_name}: {len(test)} cannot calibrate the {quantile:g} quantile threshold; "
                        f"need at least {needed} (1 / quantile)")
    n_synthetic, n_test = len(synthetic), len(test)
    rank = int(np.ceil(quantile * n_test - 1e-9))
    threshold = float(np.sort(test)[rank - 1])
    below = int((synthetic < threshold).sum())
    interval = binomtest(below, n_synthetic).proportion_ci(confidence, method="wilson")
    return CalibratedShare(rank=rank, threshold=threshold,
                           share_below=Estimate(value=below / n_synthetic, ci_low=interval.low, ci_high=interval.high),
                           expected_share=rank / (n_test + 1),
                           p_value=float(betabinom.sf(below - 1, n_synthetic, rank, n_test - rank + 1)))


def memorisation(synthetic: Nearest, test: Nearest, space: str, quantile: float = 0.05, n_pairs: int = 8,
                 confidence: float = 0.95) -> MemorisationResult:
    """The share of synthetic images below the threshold calibrated on the test images, from `nearest_training` of
    both sets against the same training images."""
    if n_pairs < 0:
        raise ConfigError(f"n_pairs: expected a number of pairs >= 0, got {n_pairs}")
    if synthetic.n_training != test.n_training:
        raise DataError(f"memorisation: the synthetic images were searched against {synthetic.n_training} training "
                        f"images, the test images against {test.n_training}; use the same training set")
    share = calibrated_share(synthetic.distance, test.distance, quantile, confidence)
    nearest_first = np.argsort(synthetic.distance, kind="stable")[:n_pairs]
    return MemorisationResult(
        space=space, n_synthetic=len(synthetic.distance), n_test=len(test.distance), n_training=test.n_training,
        quantile=quantile, rank=share.rank, threshold=share.threshold, share_below=share.share_below,
        confidence=confidence, expected_share=share.expected_share, p_value=share.p_value,
        synthetic_distances=DistanceSummary.of(synthetic.distance), test_distances=DistanceSummary.of(test.distance),
        closest_pairs=[ClosestPair(synthetic=int(i), training=int(synthetic.index[i]),
                                   distance=float(synthetic.distance[i])) for i in nearest_first])
