"""Paired arm-vs-baseline statistics: seed-level t-tests, patient-level bootstrap CIs, multiplicity.

Two sources of noise are reported separately. Training noise is captured by the spread of the
per-seed score differences (t-interval and one-sided paired t-test, seeds are paired because both
arms train with the same seeds). Test-set sampling noise is captured by a cluster bootstrap over
patients: a patient can contribute several test cases whose errors are correlated, so resampling
cases would understate the uncertainty. Every bootstrap replicate applies one set of patient
weights to all seeds of both arms, which keeps the pairing.

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
class Comparison:
    """One arm against the baseline over paired seeds.

    `t_ci` and `p_value` describe seed-to-seed (training) variation; `boot_ci` describes test-set
    sampling variation. `p_value` is one-sided, H1: arm > baseline. When all per-seed differences
    are identical the t-test is undefined; then `t_ci` is (delta, delta), `p_value` is 0.0 if
    delta > 0 else 1.0 and `t_stat` is +inf, -inf or 0.0 by the sign of delta.
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
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
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

    rng = np.random.default_rng(seed)
    rows_per_block = max(1, _BLOCK_ELEMENTS // n_cases)
    boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, rows_per_block):
        rows = min(rows_per_block, n_boot - start)
        w = patient_bootstrap_weights(patient_ids, rows, rng)
        total = sum(a.weighted(w) - b.weighted(w) for a, b in zip(arm, baseline, strict=True))
        boot[start : start + rows] = total / len(arm)
    alpha = 1 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])

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
    )


def correct(p_values: Sequence[float], method: Literal["holm", "bonferroni"]) -> list[float]:
    """Family-wise corrected p-values across all comparisons of one run (Holm or Bonferroni)."""
    if method not in _PINGOUIN_METHODS:
        raise ValueError(f"method must be one of {sorted(_PINGOUIN_METHODS)}; got {method!r}")
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return []
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {p.tolist()}")
    _, corrected = pingouin.multicomp(p, method=_PINGOUIN_METHODS[method])
    return [float(x) for x in corrected]
