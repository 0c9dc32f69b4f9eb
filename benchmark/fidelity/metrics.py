"""Fidelity and diversity of a synthetic set against real images, on feature arrays (rows are images).

- FID: the Fréchet distance between Gaussian fits of the two sets (Heusel et al. 2017).
- KID: the unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over random subsets
  as torchmetrics and clean-fid do (Bińkowski et al. 2018).
- precision, recall, density, coverage with k nearest neighbours (Naeem et al. 2020), as the `prdc` package
  defines them: an image's ball reaches its k-th nearest other image of its own set; precision is the share of
  synthetic images inside some real ball, recall the share of real images inside some synthetic ball, density the
  mean number of real balls holding a synthetic image over k, coverage the share of real balls holding a synthetic
  image.

Each comes with a bias-corrected percentile bootstrap interval: real and synthetic images are resampled with
replacement (independently, seeded), every metric is recomputed on each replicate, and the replicates' percentile
interval is moved back by their bias (their mean minus the estimate; Efron & Tibshirani 1993, ch. 10) and kept
inside the metric's range. Percentile, because these statistics are bounded (precision to [0, 1], FID to >= 0) and
skewed near their bounds, where a normal interval would leave the range; it needs no standard error, and BCa's
jackknife would cost one more evaluation per image. Moved, because a replicate holds only about 63% distinct
images, which shifts these statistics: the estimated covariances get noisier and FID rises, fewer distinct balls
and nearest images make precision, recall and coverage fall. On Gaussian features in three settings
(tests/benchmarks/fidelity_interval_coverage.py, docs/fidelity.md) the plain percentile interval held the
estimator's mean for none of the data sets for FID, 47-55% for precision and 0-32% for coverage; moved, 88-100% for
every metric, mostly wider than needed. In a replicate an image's copies are not its neighbours
(counting them would shrink the ball of every image drawn twice), and KID counts only pairs of different images,
so that the resampled statistics keep their form.

FID is biased upwards at finite n (the noise of the estimated covariances counts as difference; the bias falls
roughly as 1/n, Chong & Forsyth 2020). The interval is about FID at this n, the value repeated draws of sets of this
size would give on average, not about the infinite-sample FID, which is lower: compare FIDs only at equal set sizes
and with the same extractor.

Everything a replicate needs (kernels, distances, neighbour order) is computed once per pair of sets; a replicate
is a weighted sum over draw counts. Memory is O(n²) in the set sizes (a few thousand images per side).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.metrics import pairwise_distances

from ..errors import DataError


class FidelitySettings(BaseModel):
    """How the metrics are computed; recorded with every result, since each setting changes the numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=5, ge=1, description="Nearest neighbours for precision, recall, density, coverage.")
    n_boot: int = Field(default=1000, ge=2, description="Bootstrap replicates per interval.")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Coverage of the percentile intervals.")
    kid_subsets: int = Field(default=100, ge=1, description="Random subsets KID averages over.")
    kid_subset_size: int = Field(default=1000, ge=2, description="Images per set in a KID subset (capped at the "
                                                                 "smaller set's size).")
    seed: int = Field(default=0, ge=0, description="Seeds the KID subsets and the bootstrap draws.")


class Estimate(BaseModel):
    """A number with its interval; the model holding it says how the interval was computed."""

    model_config = ConfigDict(extra="forbid")

    value: float
    ci_low: float
    ci_high: float


class BootstrapEstimate(Estimate):
    bias: float = Field(description="Mean of the bootstrap replicates minus `value`: the resampling's bias, by which "
                                    "the percentile interval was moved back.")


class FidelityResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_real: int
    n_synthetic: int
    settings: FidelitySettings
    fid: BootstrapEstimate
    kid: BootstrapEstimate
    precision: BootstrapEstimate
    recall: BootstrapEstimate
    density: BootstrapEstimate
    coverage: BootstrapEstimate


class GroupFidelity(BaseModel):
    """One group's fidelity, or why there is none: a group too small for k nearest neighbours is recorded, not
    dropped and not given a number."""

    model_config = ConfigDict(extra="forbid")

    n_real: int
    n_synthetic: int
    result: FidelityResult | None
    not_computed: str | None = Field(default=None, description="Why `result` is None.")

    @model_validator(mode="after")
    def _result_or_reason(self) -> GroupFidelity:
        if (self.result is None) == (self.not_computed is None):
            raise ValueError("a group holds either a result or the reason it has none, not both or neither")
        return self


def feature_matrix(array: np.ndarray, name: str) -> np.ndarray:
    """`array` as a finite 2-D float array (images × features), or a DataError naming `name` and what is wrong.
    float32 stays float32 (pixel spaces are large); integers (e.g. uint8 pixels) become float32."""
    matrix = np.asarray(array)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise DataError(f"{name}: expected a 2-D array (images × features) with at least one of each, "
                        f"got shape {matrix.shape}")
    if not np.issubdtype(matrix.dtype, np.floating):
        if not np.issubdtype(matrix.dtype, np.integer):
            raise DataError(f"{name}: expected numbers, got dtype {matrix.dtype}")
        matrix = matrix.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise DataError(f"{name}: {bad.size} row(s) hold NaN or infinite values (first: row {bad[0]})")
    return matrix


def _pair(real: np.ndarray, synthetic: np.ndarray, minimum: int, reason: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as float64 feature matrices of one dimension, each with at least `minimum` images (`reason` says
    why), or a DataError."""
    real = feature_matrix(real, "real features").astype(np.float64)
    synthetic = feature_matrix(synthetic, "synthetic features").astype(np.float64)
    if real.shape[1] != synthetic.shape[1]:
        raise DataError(f"synthetic features: {synthetic.shape[1]} features per image, the real ones have "
                        f"{real.shape[1]}; both sets must come from the same extractor")
    for name, features in (("real", real), ("synthetic", synthetic)):
        if len(features) < minimum:
            raise DataError(f"{name} features: {len(features)} image(s); the metrics need at least {minimum} "
                            f"({reason})")
    return real, synthetic


def _root(cov: np.ndarray) -> np.ndarray:
    """A factor L with L Lᵀ = cov: Cholesky's (a tenth of an eigendecomposition's cost), or V Λ^½ from the
    eigendecomposition where cov is singular (fewer distinct images than features)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(cov)
        return vectors * np.sqrt(np.clip(values, 0, None))


def _numerical_zero(eigenvalues: np.ndarray) -> float:
    """The largest eigenvalue indistinguishable from zero: numpy's matrix_rank tolerance (largest × size × machine
    epsilon). With fewer images than features the product is singular, and the square roots of its zero eigenvalues'
    rounding noise (±1e-16 × largest) would add ±1e-8 each to FID, different on every CPU's kernels: a validator on
    another machine could not recompute the stored number."""
    return float(np.abs(eigenvalues).max(initial=0.0) * len(eigenvalues) * np.finfo(eigenvalues.dtype).eps)


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """||μ₁ - μ₂||² + tr(Σ₁ + Σ₂ - 2 (Σ₁Σ₂)^½), with tr (Σ₁Σ₂)^½ = Σ √λ over the eigenvalues of the symmetric
    positive semi-definite Lᵀ Σ₂ L for any L Lᵀ = Σ₁ (they are those of Σ₁Σ₂): one symmetric eigenvalue problem,
    no complex parts to discard and no iteration, unlike scipy.linalg.sqrtm on the non-symmetric product (the two
    agree to 1e-12 relative in the tests)."""
    root = _root(cov1)
    eigenvalues = np.linalg.eigvalsh(root.T @ cov2 @ root)
    trace_sqrt = np.sqrt(eigenvalues[eigenvalues > _numerical_zero(eigenvalues)]).sum()
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


def _moments(features: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance (n - 1) of the images drawn `counts` times each."""
    n = counts.sum()
    mean = counts @ features / n
    centred = features - mean
    return mean, (centred * counts[:, None]).T @ centred / (n - 1)


def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1) ** 3


def _within(kernel: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row of `weights` (draw counts or subset indicators), the mean kernel value over pairs of draws of two
    different images; NaN for a row that drew a single image (no pair: a replicate of a tiny set), which the
    interval then leaves out."""
    pairs = weights.sum(axis=1) ** 2 - (weights**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (((weights @ kernel) * weights).sum(axis=1) - weights**2 @ np.diag(kernel)) / pairs


class _Balls:
    """The k-nearest-neighbour balls of one set, from its pairwise distances. Each image keeps its nearest other
    images, sorted, so that a replicate's radii are a cumulative count over a short list."""

    def __init__(self, distances: np.ndarray, k: int) -> None:
        self.distances = distances.copy()
        np.fill_diagonal(self.distances, np.inf)  # an image is not its own neighbour
        self.k = k
        self._keep(min(len(distances) - 1, 8 * k + 64))

    def _keep(self, width: int) -> None:
        """The `width` nearest other images of each image, nearest first."""
        nearest = np.argpartition(self.distances, width - 1, axis=1)[:, :width]
        by_distance = np.argsort(np.take_along_axis(self.distances, nearest, axis=1), axis=1, kind="stable")
        self.order = np.take_along_axis(nearest, by_distance, axis=1)
        self.sorted = np.take_along_axis(self.distances, self.order, axis=1)

    def radii(self, counts: np.ndarray) -> np.ndarray:
        """Each image's radius: the distance at which the draws of its other images, nearest first, reach k. With
        fewer than k such draws in all (tiny sets only), the farthest image drawn. The kept list is widened to every
        image when it falls short (fewer than k draws among 8k + 64 images: practically never)."""
        drawn = counts[self.order]
        reached = np.cumsum(drawn, axis=1) >= self.k
        if not reached[:, -1].all() and self.order.shape[1] < len(counts) - 1:
            self._keep(len(counts) - 1)
            return self.radii(counts)
        farthest = drawn.shape[1] - 1 - np.argmax(drawn[:, ::-1] > 0, axis=1)
        position = np.where(reached[:, -1], np.argmax(reached, axis=1), farthest)
        return self.sorted[np.arange(len(position)), position]


class _Pair:
    """What the metrics need from one (real, synthetic) pair, computed once (and only for the metrics asked): every
    metric is then a function of how often each image was drawn (all ones for the point estimate)."""

    def __init__(self, real: np.ndarray, synthetic: np.ndarray, k: int) -> None:
        self.real, self.synthetic, self.k = real, synthetic, k

    @cached_property
    def kernels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (_cubic_kernel(self.real, self.real), _cubic_kernel(self.synthetic, self.synthetic),
                _cubic_kernel(self.real, self.synthetic))

    @cached_property
    def distances(self) -> np.ndarray:
        return pairwise_distances(self.real, self.synthetic)

    @cached_property
    def balls(self) -> tuple[_Balls, _Balls]:
        return _Balls(pairwise_distances(self.real), self.k), _Balls(pairwise_distances(self.synthetic), self.k)

    def fid(self, real_counts: np.ndarray, synthetic_counts: np.ndarray) -> float:
        return frechet_distance(*_moments(self.real, real_counts), *_moments(self.synthetic, synthetic_counts))

    def kid(self, real_weights: np.ndarray, synthetic_weights: np.ndarray) -> np.ndarray:
        """MMD²_u per row of the (rows × images) weights: draw counts, or 0/1 subset indicators."""
        real_kernel, synthetic_kernel, cross_kernel = self.kernels
        cross = ((real_weights @ cross_kernel) * synthetic_weights).sum(axis=1)
        cross /= real_weights.sum(axis=1) * synthetic_weights.sum(axis=1)
        return _within(real_kernel, real_weights) + _within(synthetic_kernel, synthetic_weights) - 2 * cross

    def prdc(self, real_counts: np.ndarray, synthetic_counts: np.ndarray) -> dict[str, float]:
        real_balls, synthetic_balls = self.balls
        real_radii, synthetic_radii = real_balls.radii(real_counts), synthetic_balls.radii(synthetic_counts)
        in_real_ball = (self.distances < real_radii[:, None]) & (real_counts[:, None] > 0)
        real_balls_holding = real_counts @ in_real_ball  # per synthetic image, counting drawn copies
        in_synthetic_ball = ((self.distances < synthetic_radii) & (synthetic_counts > 0)).any(axis=1)
        nearest_synthetic = np.where(synthetic_counts > 0, self.distances, np.inf).min(axis=1)
        n_real, n_synthetic = real_counts.sum(), synthetic_counts.sum()
        return {
            "precision": float(synthetic_counts @ (real_balls_holding > 0) / n_synthetic),
            "recall": float(real_counts @ in_synthetic_ball / n_real),
            "density": float(synthetic_counts @ real_balls_holding / (self.k * n_synthetic)),
            "coverage": float(real_counts @ (nearest_synthetic < real_radii) / n_real),
        }


def _kid_subsets(n_real: int, n_synthetic: int, settings: FidelitySettings,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """0/1 indicators (subsets × images) of random subsets drawn without replacement, clean-fid's size rule:
    min(n_real, n_synthetic, kid_subset_size) from each set."""
    size = min(n_real, n_synthetic, settings.kid_subset_size)
    indicators = []
    for n in (n_real, n_synthetic):
        chosen = np.argsort(rng.random((settings.kid_subsets, n)), axis=1)[:, :size]
        rows = np.zeros((settings.kid_subsets, n))
        np.put_along_axis(rows, chosen, 1.0, axis=1)
        indicators.append(rows)
    return indicators[0], indicators[1]


def fid(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FID between two feature sets (no interval)."""
    real, synthetic = _pair(real, synthetic, 2, "a covariance and a pair of images")
    return frechet_distance(*_moments(real, np.ones(len(real))), *_moments(synthetic, np.ones(len(synthetic))))


def kid(real: np.ndarray, synthetic: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """KID: the mean MMD²_u over `subsets` random subsets (no interval). When both sets hold at most `subset_size`
    images every subset is the whole set, and KID is the full-sample U-statistic that the subset mean estimates."""
    settings = FidelitySettings(kid_subsets=subsets, kid_subset_size=subset_size, seed=seed)
    real, synthetic = _pair(real, synthetic, 2, "a covariance and a pair of images")
    pair = _Pair(real, synthetic, settings.k)
    return float(pair.kid(*_kid_subsets(len(real), len(synthetic), settings, np.random.default_rng(seed))).mean())


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage with k nearest neighbours (no intervals)."""
    real, synthetic = _pair(real, synthetic, k + 1, "k + 1 for k nearest neighbours")
    return _Pair(real, synthetic, k).prdc(np.ones(len(real)), np.ones(len(synthetic)))


_RANGES = {"fid": (0.0, np.inf), "kid": (-np.inf, np.inf), "precision": (0.0, 1.0), "recall": (0.0, 1.0),
           "density": (0.0, np.inf), "coverage": (0.0, 1.0)}
"""The values each metric can take; an interval is kept inside them."""


def _interval(value: float, replicates: np.ndarray, confidence: float,
              bounds: tuple[float, float]) -> BootstrapEstimate:
    """The replicates' percentile interval moved by their bias (mean - value), inside `bounds`. NaN replicates (KID
    of a replicate without a pair) are left out."""
    replicates = replicates[np.isfinite(replicates)]
    bias = float(replicates.mean() - value)
    low, high = np.clip(np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2]) - bias, *bounds)
    return BootstrapEstimate(value=value, ci_low=float(low), ci_high=float(high), bias=bias)


def fidelity(real: np.ndarray, synthetic: np.ndarray, settings: FidelitySettings | None = None) -> FidelityResult:
    """Every metric with its percentile bootstrap interval (the module's docstring says how to read them)."""
    settings = settings or FidelitySettings()
    real, synthetic = _pair(real, synthetic, settings.k + 1, "k + 1 for k nearest neighbours")
    pair = _Pair(real, synthetic, settings.k)
    rng = np.random.default_rng(settings.seed)
    ones_real, ones_synthetic = np.ones(len(real)), np.ones(len(synthetic))
    point = {"fid": pair.fid(ones_real, ones_synthetic),
             "kid": float(pair.kid(*_kid_subsets(len(real), len(synthetic), settings, rng)).mean()),
             **pair.prdc(ones_real, ones_synthetic)}
    real_counts = rng.multinomial(len(real), ones_real / len(real), size=settings.n_boot).astype(np.float64)
    synthetic_counts = rng.multinomial(len(synthetic), ones_synthetic / len(synthetic),
                                       size=settings.n_boot).astype(np.float64)
    replicates: dict[str, list[float]] = {name: [] for name in point}
    for r, s in zip(real_counts, synthetic_counts):
        for name, value in {"fid": pair.fid(r, s), **pair.prdc(r, s)}.items():
            replicates[name].append(value)
    replicates["kid"] = list(pair.kid(real_counts, synthetic_counts))
    return FidelityResult(n_real=len(real), n_synthetic=len(synthetic), settings=settings,
                          **{name: _interval(point[name], np.asarray(replicates[name]), settings.confidence,
                                             _RANGES[name]) for name in point})


def _group_mask(mask: np.ndarray, n: int, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (n,):
        raise DataError(f"{name}: expected a boolean mask of {n} images, got dtype {mask.dtype} shape {mask.shape}")
    return mask


def fidelity_by_group(real: np.ndarray, synthetic: np.ndarray, real_groups: Mapping[str, np.ndarray],
                      synthetic_groups: Mapping[str, np.ndarray],
                      settings: FidelitySettings | None = None) -> dict[str, GroupFidelity]:
    """`fidelity` within each group (e.g. per label, or with and without a finding), from boolean masks over the
    rows of each set; groups may overlap (a multi-label image belongs to each of its labels), and single-label ids
    give masks as {g: ids == g}. A group with fewer than k + 1 images on either side is recorded as not computed."""
    settings = settings or FidelitySettings()
    if set(real_groups) != set(synthetic_groups):
        missing = sorted(set(real_groups) ^ set(synthetic_groups))
        raise DataError(f"groups: {missing} are named for one set only; name every group for both sets "
                        f"(an empty mask for a group without images)")
    real = feature_matrix(real, "real features")
    synthetic = feature_matrix(synthetic, "synthetic features")
    results = {}
    for group in real_groups:
        in_real = _group_mask(real_groups[group], len(real), f"real groups: {group}")
        in_synthetic = _group_mask(synthetic_groups[group], len(synthetic), f"synthetic groups: {group}")
        n_real, n_synthetic = int(in_real.sum()), int(in_synthetic.sum())
        if min(n_real, n_synthetic) < settings.k + 1:
            results[group] = GroupFidelity(n_real=n_real, n_synthetic=n_synthetic, result=None,
                                           not_computed=f"n < k + 1 = {settings.k + 1} (real {n_real}, "
                                                        f"synthetic {n_synthetic})")
        else:
            results[group] = GroupFidelity(n_real=n_real, n_synthetic=n_synthetic,
                                           result=fidelity(real[in_real], synthetic[in_synthetic], settings))
    return results
