"""Paired arm-vs-reference statistics: one primary analysis per comparison, secondary intervals.

An arm (e.g. training with a generator's synthetic images) is compared with a reference arm over
paired training seeds (both arms train with the same seeds) on one fixed test set. The observed
difference Δ carries two independent sources of noise:

- training noise: another set of seeds would give other models. Its standard error comes from the
  spread of the per-seed differences (n_seeds - 1 degrees of freedom);
- test-set sampling: another draw of test patients would give other scores. Its standard error
  comes from a cluster bootstrap over patients of the mean-over-seeds difference (n_patients - 1
  degrees of freedom). A patient can contribute several test cases whose errors are correlated, so
  resampling cases would understate it; every replicate applies one set of patient weights to all
  seeds of both arms, which keeps the pairing.

Primary analysis (`combined_interval`): the two variances are added and the t reference
distribution takes Welch-Satterthwaite degrees of freedom, which gives one interval, one two-sided
test and, through `verdict` on the multiplicity-corrected p (`correct`), one three-way decision
(helps / hurts / no detectable difference). Either partial interval alone ignores the other source
and under-covers whenever that source dominates: in A/A comparisons (an arm against a copy of the
reference) the patient bootstrap alone called 20 of 28 segmentation comparisons significant, the
combined analysis 1 of 28 on each task. The minimum detectable effect at 80% power is reported with
it, so that "no detectable difference" can be read against what the experiment could have seen.

Secondary numbers, kept for diagnosis: the t-interval over per-seed differences and the one-sided
paired t-test (training noise only, test set fixed), and the percentile interval of the patient
bootstrap (test-set sampling only, models fixed).

Metrics are recomputed under bootstrap weights in one vectorised pass (a weighted count per case
instead of re-indexing rows), because scoring every resample with sklearn is far too slow for
thousands of replicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pingouin
from scipy import stats

# Bootstrap weights are materialised in blocks of about this many elements (float32), so that
# n_boot=10_000 on a few thousand cases never holds the full weight matrix at once.
_BLOCK_ELEMENTS = 1 << 22

_PINGOUIN_METHODS = {"holm": "holm", "bonferroni": "bonf"}


def _check_weights(weights: np.ndarray, n_cases: int) -> np.ndarray:
    """Weights as a float (B, n_cases) array, rejecting shapes or values that give silent garbage.

    float32 input is kept as is (bootstrap weights are float32 and exact for integer counts), so
    that thousands of replicates are not copied to float64 once per metric; whole-array `min` and
    `sum` keep the validation to two cheap passes (a NaN or inf anywhere makes the sum non-finite).
    """
    w = np.asarray(weights)
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    if w.ndim != 2 or w.shape[1] != n_cases:
        raise ValueError(f"weights must have shape (B, {n_cases}); got {w.shape}")
    if w.size and (not np.isfinite(w.sum()) or w.min() < 0):
        raise ValueError("weights must be finite and non-negative")
    return w


class CaseMetric(Protocol):
    """A test-set score that can be recomputed under per-case weights, many weightings at once."""

    @property
    def n_cases(self) -> int:
        """Number of test cases the metric is computed over."""
        ...

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """Scores (B,) under non-negative case weights (B, n_cases), e.g. bootstrap counts."""
        ...

    def value(self) -> float:
        """The plain score: every case weighted once."""
        return float(self.weighted(np.ones((1, self.n_cases)))[0])


class MeanOfCases(CaseMetric):
    """Mean of a per-case score (e.g. per-image Dice); a weighted mean under bootstrap weights."""

    def __init__(self, values: np.ndarray) -> None:
        v = np.array(values, dtype=np.float64)
        if v.ndim != 1 or v.size == 0:
            raise ValueError(f"values must be a non-empty 1-D array; got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("values must be finite; decide upstream how to score undefined cases")
        v.setflags(write=False)
        self._values = v

    @property
    def n_cases(self) -> int:
        return self._values.size

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        # Accumulated in float64: per-case scores are not integers, unlike MacroF1's indicators.
        w = _check_weights(weights, self.n_cases).astype(np.float64, copy=False)
        totals = w.sum(axis=1)
        if np.any(totals <= 0):
            raise ValueError("every weight row must have a positive total")
        return (w @ self._values) / totals


class MacroF1(CaseMetric):
    """Macro-averaged F1 over binary labels, matching sklearn's f1_score(zero_division=0).

    Per label F1 = 2TP / (2TP + FP + FN), which only needs two per-case indicators (TP, and
    pred + target), so weighted counts for all replicates come from a single matrix product.
    """

    def __init__(self, pred: np.ndarray, target: np.ndarray) -> None:
        p = np.asarray(pred)
        t = np.asarray(target)
        if p.ndim != 2 or p.shape != t.shape or p.size == 0:
            raise ValueError(
                "pred and target must both be non-empty (n_cases, n_labels) arrays of the same "
                f"shape; got {p.shape} and {t.shape}"
            )
        for name, a in (("pred", p), ("target", t)):
            if not np.all(np.isin(a, (0, 1))):
                raise ValueError(f"{name} must be binary (0/1 or bool)")
        p = p.astype(np.float64)
        t = t.astype(np.float64)
        counts = np.concatenate([p * t, p + t], axis=1)
        counts.setflags(write=False)
        self._counts = counts
        self._n_labels = p.shape[1]

    @property
    def n_cases(self) -> int:
        return self._counts.shape[0]

    def _label_f1(self, sums: np.ndarray) -> np.ndarray:
        """Per-label F1 (B, n_labels) from weighted indicator sums; 0 where undefined."""
        tp, denom = sums[:, : self._n_labels], sums[:, self._n_labels :]
        return np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)

    def per_label(self) -> np.ndarray:
        """Unweighted F1 of each label, for per-finding reporting."""
        return self._label_f1(self._counts.sum(axis=0, keepdims=True))[0]

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        # In the weights' precision: float32 sums of integer counts are exact below 2**24.
        w = _check_weights(weights, self.n_cases)
        sums = (w @ self._counts.astype(w.dtype, copy=False)).astype(np.float64)
        return self._label_f1(sums).mean(axis=1)


def patient_bootstrap_weights(
    patient_ids: Sequence[str], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Cluster-bootstrap case weights (n_boot, n_cases), float32 holding integer counts.

    Each row draws the patients with replacement (as many draws as there are patients); a case's
    weight is how often its patient was drawn, so all cases of one patient move together.
    """
    ids = np.asarray(patient_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError("patient_ids must be a non-empty 1-D sequence")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    _, case_patient = np.unique(ids, return_inverse=True)
    case_patient = case_patient.reshape(-1)
    n_patients = int(case_patient.max()) + 1
    out = np.empty((n_boot, ids.size), dtype=np.float32)
    rows_per_block = max(1, _BLOCK_ELEMENTS // n_patients)
    for start in range(0, n_boot, rows_per_block):
        rows = min(rows_per_block, n_boot - start)
        draws = rng.integers(0, n_patients, size=(rows, n_patients))
        # Offset each row's draws so one bincount yields the (rows, n_patients) count matrix.
        draws += np.arange(rows)[:, None] * n_patients
        counts = np.bincount(draws.ravel(), minlength=rows * n_patients).reshape(rows, n_patients)
        out[start : start + rows] = counts[:, case_patient]
    return out


@dataclass(frozen=True)
class CombinedInterval:
    """The primary analysis of one difference: both noise sources, Satterthwaite df.

    `p` is two-sided (see `verdict`); `mde` is the smallest true difference the two-sided test at
    level 1 - confidence detects with 80% power, given this standard error and df.
    """

    delta: float
    se_seeds: float
    se_patients: float
    se: float
    df: float
    ci: tuple[float, float]
    p: float
    mde: float


def _finite_1d(values: Sequence[float] | np.ndarray, name: str, minimum: int) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size < minimum or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be a 1-D array of at least {minimum} finite values")
    return a


def _sample_var(a: np.ndarray) -> float:
    """ddof=1 variance, exactly 0 for identical values (np.var can leave rounding noise there)."""
    return 0.0 if np.all(a == a[0]) else float(np.var(a, ddof=1))


def combined_interval(
    diffs: Sequence[float] | np.ndarray,
    boot_replicates: Sequence[float] | np.ndarray,
    n_patients: int,
    confidence: float = 0.95,
) -> CombinedInterval:
    """Primary interval, two-sided p and MDE of the mean per-seed difference.

    se_seeds² = var(diffs)/n_seeds (training noise, n_seeds - 1 df) and se_patients² = var of the
    patient-bootstrap replicates of the mean-over-seeds difference (test-set sampling, n_patients - 1
    df) are independent, so their sum is the variance of Δ; with two variance estimates of different
    df the reference t distribution takes the Welch-Satterthwaite df. A component that is exactly 0
    adds no df term. When both are 0 the test is degenerate, handled as the seed t-test is: the
    interval is (Δ, Δ), p is 0 if Δ ≠ 0 else 1, mde is 0, and df is reported as
    (n_seeds - 1) + (n_patients - 1), the largest value the formula can take, only to stay finite.
    """
    d = _finite_1d(diffs, "diffs", 2)
    boot = _finite_1d(boot_replicates, "boot_replicates", 2)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1; got {n_patients}")
    delta = float(d.mean())
    var_seeds = _sample_var(d) / d.size
    var_patients = _sample_var(boot)
    if var_patients > 0 and n_patients < 2:
        raise ValueError("bootstrap replicates vary, which one patient cannot make")
    se_seeds, se_patients = float(np.sqrt(var_seeds)), float(np.sqrt(var_patients))
    se = float(np.sqrt(var_seeds + var_patients))
    df_seeds, df_patients = d.size - 1, n_patients - 1
    if se == 0:
        return CombinedInterval(delta, 0.0, 0.0, 0.0, float(df_seeds + df_patients),
                                (delta, delta), 0.0 if delta != 0 else 1.0, 0.0)
    denominator = sum(v**2 / k for v, k in ((var_seeds, df_seeds), (var_patients, df_patients)) if v > 0)
    df = float(se**4 / denominator)
    alpha = 1 - confidence
    t_crit = float(stats.t.ppf(1 - alpha / 2, df))
    p = float(min(1.0, 2 * stats.t.sf(abs(delta) / se, df)))
    mde = float((t_crit + stats.t.ppf(0.80, df)) * se)
    return CombinedInterval(delta, se_seeds, se_patients, se, df,
                            (delta - t_crit * se, delta + t_crit * se), p, mde)


def verdict(
    delta: float, p_corrected: float, alpha: float = 0.05
) -> Literal["helps", "hurts", "no detectable difference"]:
    """Three-way decision on one comparison from its multiplicity-corrected two-sided p.

    "helps" if p_corrected < alpha and delta > 0, "hurts" if p_corrected < alpha and delta < 0,
    otherwise "no detectable difference" (not evidence of equivalence: compare the MDE). This is
    the standard directional reading of a two-sided test, each direction at level alpha/2, so the
    chance of declaring either direction when there is no difference stays at most alpha; a
    one-sided p could never call an arm harmful.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if not 0 <= p_corrected <= 1:
        raise ValueError(f"p_corrected must lie in [0, 1]; got {p_corrected}")
    if not np.isfinite(delta):
        raise ValueError(f"delta must be finite; got {delta}")
    if p_corrected < alpha and delta > 0:
        return "helps"
    if p_corrected < alpha and delta < 0:
        return "hurts"
    return "no detectable difference"


@dataclass(frozen=True)
class Comparison:
    """One arm against the baseline over paired seeds.

    Primary (both noise sources, see `combined_interval`): `primary_ci`, the two-sided
    `primary_p`, `se_seeds`, `se_patients`, the Satterthwaite `df` and the 80%-power `mde`.
    Secondary: `t_ci`, `t_stat` and `p_value` describe seed-to-seed (training) variation only,
    `boot_ci` test-set sampling variation only. `p_value` is one-sided, H1: arm > baseline. When
    all per-seed differences are identical the t-test is undefined; then `t_ci` is
    (delta, delta), `p_value` is 0.0 if delta > 0 else 1.0 and `t_stat` is +inf, -inf or 0.0 by
    the sign of delta.
    """

    arm_mean: float
    baseline_mean: float
    delta: float
    t_ci: tuple[float, float]
    boot_ci: tuple[float, float]
    p_value: float
    n_seeds: int
    t_stat: float
    arm_scores: tuple[float, ...]
    baseline_scores: tuple[float, ...]
    confidence: float
    n_boot: int
    se_seeds: float
    se_patients: float
    df: float
    primary_ci: tuple[float, float]
    primary_p: float
    mde: float


def _scores(metrics: Sequence[CaseMetric], name: str) -> np.ndarray:
    """Plain per-seed scores, refusing non-finite ones that would poison every statistic."""
    scores = np.array([m.value() for m in metrics], dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} has a non-finite score: {scores.tolist()}")
    return scores


def _seed_test(
    arm_scores: np.ndarray, base_scores: np.ndarray, confidence: float
) -> tuple[float, tuple[float, float], float]:
    """(t statistic, two-sided t-interval of the mean difference, one-sided paired p)."""
    diffs = arm_scores - base_scores
    if np.all(diffs == diffs[0]):
        d = float(diffs[0])
        return float(np.sign(d)) * np.inf if d != 0 else 0.0, (d, d), 0.0 if d > 0 else 1.0
    n = diffs.size
    result = stats.ttest_rel(arm_scores, base_scores, alternative="greater")
    mean = float(diffs.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * diffs.std(ddof=1) / np.sqrt(n))
    return float(result.statistic), (mean - half, mean + half), float(result.pvalue)


def boot_differences(
    arms: Sequence[Sequence[CaseMetric]],
    baseline: Sequence[CaseMetric],
    patient_ids: Sequence[str],
    *,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Patient-bootstrap replicates (len(arms), n_boot) of each arm's mean-over-seeds difference from the baseline.

    Every replicate applies one set of patient weights to all seeds of every arm and of the baseline, so the
    arms' replicates pair: their joint spread is the covariance of their differences under test-set sampling.
    """
    n_cases = len(patient_ids)
    rng = np.random.default_rng(seed)
    rows_per_block = max(1, _BLOCK_ELEMENTS // n_cases)
    boot = np.empty((len(arms), n_boot), dtype=np.float64)
    for start in range(0, n_boot, rows_per_block):
        rows = min(rows_per_block, n_boot - start)
        w = patient_bootstrap_weights(patient_ids, rows, rng)
        for row, arm in zip(boot, arms, strict=True):
            total = sum(a.weighted(w) - b.weighted(w) for a, b in zip(arm, baseline, strict=True))
            row[start : start + rows] = total / len(arm)
    return boot


def compare(
    arm: Sequence[CaseMetric],
    baseline: Sequence[CaseMetric],
    patient_ids: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """Compare an arm with the baseline; arm[i] and baseline[i] come from the same training seed."""
    if len(arm) != len(baseline):
        raise ValueError(
            f"arm has {len(arm)} seeds but baseline has {len(baseline)}; they must pair"
        )
    if len(arm) < 2:
        raise ValueError(f"need at least 2 paired seeds for a t-interval; got {len(arm)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2 (the primary analysis needs a bootstrap variance); got {n_boot}")
    n_cases = len(patient_ids)
    sizes = {m.n_cases for m in (*arm, *baseline)}
    if sizes != {n_cases}:
        raise ValueError(
            f"every metric must cover the {n_cases} test cases in patient_ids; got {sorted(sizes)}"
        )

    arm_scores = _scores(arm, "arm")
    base_scores = _scores(baseline, "baseline")
    diffs = arm_scores - base_scores
    t_stat, t_ci, p_value = _seed_test(arm_scores, base_scores, confidence)

    boot = boot_differences([arm], baseline, patient_ids, n_boot=n_boot, seed=seed)[0]
    alpha = 1 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    primary = combined_interval(diffs, boot, len(np.unique(np.asarray(patient_ids))), confidence)

    return Comparison(
        arm_mean=float(arm_scores.mean()),
        baseline_mean=float(base_scores.mean()),
        delta=float(diffs.mean()),
        t_ci=t_ci,
        boot_ci=(float(low), float(high)),
        p_value=p_value,
        n_seeds=len(arm),
        t_stat=t_stat,
        arm_scores=tuple(arm_scores.tolist()),
        baseline_scores=tuple(base_scores.tolist()),
        confidence=confidence,
        n_boot=n_boot,
        se_seeds=primary.se_seeds,
        se_patients=primary.se_patients,
        df=primary.df,
        primary_ci=primary.ci,
        primary_p=primary.p,
        mde=primary.mde,
    )


def correct(
    p_values: Sequence[float],
    method: Literal["holm", "bonferroni"],
    family_size: int | None = None,
) -> list[float]:
    """Family-wise corrected p-values across all comparisons of one run (Holm or Bonferroni).

    `family_size` is the number of hypotheses in the family when only some of their p-values are
    at hand (e.g. comparisons that could not be run): the missing ones count as p = 1, i.e. never
    rejected, which keeps Holm and Bonferroni valid for the whole family. Default: len(p_values).
    """
    if method not in _PINGOUIN_METHODS:
        raise ValueError(f"method must be one of {sorted(_PINGOUIN_METHODS)}; got {method!r}")
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if family_size is not None and family_size < p.size:
        raise ValueError(
            f"family_size ({family_size}) must be at least the number of p-values ({p.size})"
        )
    if p.size == 0:
        return []
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {p.tolist()}")
    padded = np.concatenate([p, np.ones((family_size or p.size) - p.size)])
    _, corrected = pingouin.multicomp(padded, method=_PINGOUIN_METHODS[method])
    return [float(x) for x in corrected[: p.size]]
