"""Tests for cxrbench.stats: weighted metrics, patient bootstrap, paired tests, corrections."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pingouin
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score

from cxrbench.stats import (
    Comparison,
    MacroF1,
    MeanOfCases,
    compare,
    correct,
    patient_bootstrap_weights,
)


def _binary(rng: np.random.Generator, shape: tuple[int, int], p: float = 0.3) -> np.ndarray:
    return (rng.random(shape) < p).astype(np.int64)


# --- metrics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_matches_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = _binary(rng, (150, 7))
    pred = np.where(rng.random(target.shape) < 0.7, target, 1 - target)
    metric = MacroF1(pred.astype(bool), target)
    expected = f1_score(target, pred, average="macro", zero_division=0)
    assert metric.value() == pytest.approx(expected, abs=1e-12)
    assert metric.per_label() == pytest.approx(
        f1_score(target, pred, average=None, zero_division=0), abs=1e-12
    )
    assert metric.n_cases == 150


def test_macro_f1_label_without_positives_counts_as_zero() -> None:
    rng = np.random.default_rng(3)
    target = _binary(rng, (60, 4))
    pred = target.copy()
    pred[:5] = 1 - pred[:5]
    target[:, 1] = 0  # no positives, but some predictions: F1 = 0
    target[:, 2] = 0  # no positives and no predictions: denominator 0, F1 = 0 (zero_division=0)
    pred[:, 2] = 0
    metric = MacroF1(pred, target)
    per_label = metric.per_label()
    assert per_label[1] == 0.0
    assert per_label[2] == 0.0
    expected = f1_score(target, pred, average="macro", zero_division=0)
    assert metric.value() == pytest.approx(expected, abs=1e-12)
    assert not np.isnan(metric.weighted(np.ones((3, 60)))).any()


def test_weighted_f1_with_integer_weights_equals_sklearn_on_repeated_rows() -> None:
    rng = np.random.default_rng(4)
    target = _binary(rng, (80, 5))
    pred = np.where(rng.random(target.shape) < 0.6, target, 1 - target)
    weights = rng.integers(0, 4, size=(6, 80))
    weights[0] = 0
    weights[0, :10] = 2  # a sparse row, where some labels may vanish entirely
    scores = MacroF1(pred, target).weighted(weights)
    assert scores.shape == (6,)
    for row, score in zip(weights, scores):
        idx = np.repeat(np.arange(80), row)
        expected = f1_score(target[idx], pred[idx], average="macro", zero_division=0)
        assert score == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (np.zeros((5, 3)), np.zeros((5, 2)), r"same shape; got \(5, 3\) and \(5, 2\)"),
        (np.zeros(5), np.zeros(5), r"\(n_cases, n_labels\) arrays .*got \(5,\) and \(5,\)"),
        (np.full((5, 3), 2), np.zeros((5, 3)), r"pred must be binary"),
        (np.zeros((0, 3)), np.zeros((0, 3)), r"non-empty .*got \(0, 3\) and \(0, 3\)"),
    ],
)
def test_macro_f1_rejects_bad_input(pred: np.ndarray, target: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MacroF1(pred, target)


def test_weighted_rejects_wrong_weight_shape_or_sign() -> None:
    metric = MacroF1(np.ones((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(B, 4\); got \(2, 5\)"):
        metric.weighted(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"shape \(B, 4\); got \(4,\)"):
        metric.weighted(np.ones(4))
    with pytest.raises(ValueError, match="finite and non-negative"):
        metric.weighted(-np.ones((1, 4)))


def test_mean_of_cases_weighted_mean() -> None:
    rng = np.random.default_rng(5)
    values = rng.random(40)
    weights = rng.integers(0, 3, size=(4, 40)).astype(np.float32)
    weights[:, 0] += 1  # every row has a positive total
    metric = MeanOfCases(values)
    expected = [np.average(values, weights=w) for w in weights]
    assert metric.weighted(weights) == pytest.approx(expected, abs=1e-12)
    assert metric.value() == pytest.approx(values.mean(), abs=1e-12)
    with pytest.raises(ValueError, match="every weight row must have a positive total"):
        metric.weighted(np.zeros((1, 40)))
    with pytest.raises(ValueError, match="values must be finite"):
        MeanOfCases(np.array([0.5, np.nan]))


# --- patient bootstrap -----------------------------------------------------------------------


def test_patient_bootstrap_weights_resample_whole_patients() -> None:
    rng = np.random.default_rng(6)
    case_counts = rng.integers(1, 5, size=30)
    ids = [f"p{p:02d}" for p, k in enumerate(case_counts) for _ in range(k)]
    order = rng.permutation(len(ids))  # cases of one patient need not be adjacent
    ids = [ids[i] for i in order]
    n_boot = 4000
    w = patient_bootstrap_weights(ids, n_boot, np.random.default_rng(7))
    assert w.shape == (n_boot, len(ids))
    assert w.dtype in (np.float32, np.int32)
    assert np.all(w == np.round(w)) and np.all(w >= 0)

    ids_arr = np.asarray(ids)
    patients = np.unique(ids_arr)
    per_patient = np.empty((n_boot, patients.size))
    for j, p in enumerate(patients):
        cols = w[:, ids_arr == p]
        assert np.all(cols == cols[:, :1]), "a patient's cases must share one weight"
        per_patient[:, j] = cols[:, 0]
    assert np.all(per_patient.sum(axis=1) == patients.size)
    # Row sums vary (whole patients of different sizes) but equal n_cases in expectation.
    row_sums = w.sum(axis=1)
    assert row_sums.std() > 0
    assert row_sums.mean() == pytest.approx(len(ids), rel=0.02)

    again = patient_bootstrap_weights(ids, n_boot, np.random.default_rng(7))
    other = patient_bootstrap_weights(ids, n_boot, np.random.default_rng(8))
    assert np.array_equal(w, again)
    assert not np.array_equal(w, other)


# --- seed-level paired test ------------------------------------------------------------------


def _constant_metrics(scores: np.ndarray, n_cases: int) -> list[MeanOfCases]:
    """Metrics whose plain value is the given score, to drive the seed-level statistics."""
    return [MeanOfCases(np.full(n_cases, s)) for s in scores]


def test_t_interval_and_p_value_match_pingouin_and_scipy() -> None:
    rng = np.random.default_rng(9)
    base = rng.normal(0.6, 0.05, size=6)
    arm = base + rng.normal(0.02, 0.03, size=6)
    ids = [f"p{i}" for i in range(10)]
    result = compare(_constant_metrics(arm, 10), _constant_metrics(base, 10), ids, n_boot=50)

    one_sided = pingouin.ttest(arm, base, paired=True, alternative="greater")
    two_sided = pingouin.ttest(arm, base, paired=True, alternative="two-sided")
    assert result.p_value == pytest.approx(one_sided.at["T_test", "p_val"], rel=1e-6)
    assert result.t_stat == pytest.approx(one_sided.at["T_test", "T"], rel=1e-6)
    # pingouin rounds its CI to 2 decimals; scipy gives the exact interval.
    assert result.t_ci == pytest.approx(tuple(two_sided.at["T_test", "CI95"]), abs=0.005 + 1e-9)
    exact = sps.ttest_rel(arm, base).confidence_interval(confidence_level=0.95)
    assert result.t_ci == pytest.approx((exact.low, exact.high), rel=1e-6)

    assert result.n_seeds == 6
    assert result.delta == pytest.approx(np.mean(arm - base), abs=1e-12)
    assert result.arm_mean == pytest.approx(arm.mean(), abs=1e-12)
    assert result.baseline_mean == pytest.approx(base.mean(), abs=1e-12)
    assert result.arm_scores == pytest.approx(tuple(arm), abs=1e-12)


@pytest.mark.parametrize(("shift", "p_expected", "t_expected"), [
    (0.05, 0.0, math.inf), (0.0, 1.0, 0.0), (-0.05, 1.0, -math.inf),
])
def test_zero_variance_differences_give_degenerate_results_without_nan(
    shift: float, p_expected: float, t_expected: float
) -> None:
    rng = np.random.default_rng(10)
    base_values = rng.random(20)
    arm_values = base_values + shift
    d = arm_values.mean() - base_values.mean()
    ids = [f"p{i // 2}" for i in range(20)]
    result = compare(
        [MeanOfCases(arm_values)] * 3, [MeanOfCases(base_values)] * 3, ids, n_boot=200
    )
    assert result.t_ci == (pytest.approx(d), pytest.approx(d))
    assert result.t_ci[0] == result.t_ci[1]
    assert result.p_value == p_expected
    assert result.t_stat == t_expected
    numbers = [result.arm_mean, result.baseline_mean, result.delta, result.p_value,
               *result.t_ci, *result.boot_ci, result.se_seeds, result.se_patients, result.df,
               *result.primary_ci, result.primary_p, result.mde]
    assert not any(math.isnan(x) for x in numbers)


def test_compare_rejects_unpaired_or_mismatched_input() -> None:
    a = MeanOfCases(np.ones(4))
    ids = ["a", "a", "b", "c"]
    with pytest.raises(ValueError, match="arm has 2 seeds but baseline has 1"):
        compare([a, a], [a], ids)
    with pytest.raises(ValueError, match="at least 2 paired seeds .*got 1"):
        compare([a], [a], ids)
    with pytest.raises(ValueError, match=r"cover the 4 test cases .*got \[4, 5\]"):
        compare([a, a], [a, MeanOfCases(np.ones(5))], ids)
    with pytest.raises(ValueError, match=r"cover the 3 test cases .*got \[4\]"):
        compare([a, a], [a, a], ids[:3])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\); got 1.5"):
        compare([a, a], [a, a], ids, confidence=1.5)


# --- patient-level bootstrap CI --------------------------------------------------------------


def test_bootstrap_ci_matches_pingouin_percentile_with_one_case_per_patient() -> None:
    rng = np.random.default_rng(11)
    n = 200
    base_values = rng.normal(0.0, 1.0, size=n)
    arm_values = base_values + rng.normal(0.2, 1.0, size=n)
    ids = [f"p{i}" for i in range(n)]
    n_boot = 20_000
    # Two identical seed pairs: the seed-mean difference is the single pair's difference.
    arm = [MeanOfCases(arm_values)] * 2
    base = [MeanOfCases(base_values)] * 2
    result = compare(arm, base, ids, n_boot=n_boot, seed=1)
    expected = pingouin.compute_bootci(
        arm_values - base_values, func="mean", method="per", n_boot=n_boot, seed=1, decimals=10
    )
    assert result.boot_ci == pytest.approx(tuple(expected), abs=0.01)
    assert result.n_boot == n_boot


def test_bootstrap_resamples_patients_not_cases() -> None:
    rng = np.random.default_rng(12)
    n_patients, copies = 60, 5
    base_values = rng.random(n_patients)
    arm_values = base_values + rng.normal(0.05, 0.2, size=n_patients)
    ids = [f"p{i}" for i in range(n_patients)]

    def run(values_a: np.ndarray, values_b: np.ndarray, case_ids: list[str]) -> Comparison:
        return compare(
            [MeanOfCases(values_a)] * 2, [MeanOfCases(values_b)] * 2, case_ids, n_boot=3000, seed=3
        )

    single = run(arm_values, base_values, ids)
    # Each patient's case repeated: identical patient draws, so the same interval.
    repeated_ids = [i for i in ids for _ in range(copies)]
    clustered = run(np.repeat(arm_values, copies), np.repeat(base_values, copies), repeated_ids)
    assert clustered.boot_ci == pytest.approx(single.boot_ci, abs=1e-9)
    # Treating the copies as independent patients would understate the uncertainty.
    naive_ids = [f"{i}-{k}" for i in ids for k in range(copies)]
    naive = run(np.repeat(arm_values, copies), np.repeat(base_values, copies), naive_ids)
    width = single.boot_ci[1] - single.boot_ci[0]
    assert naive.boot_ci[1] - naive.boot_ci[0] < 0.7 * width


def test_bootstrap_ci_covers_known_positive_shift() -> None:
    rng = np.random.default_rng(13)
    n_cases, n_seeds, shift = 300, 5, 0.1
    ids = [f"p{i // 3}" for i in range(n_cases)]
    patient_effect = np.repeat(rng.normal(0.0, 0.2, size=n_cases // 3), 3)
    base, arm = [], []
    for _ in range(n_seeds):
        base_values = 0.5 + patient_effect + rng.normal(0.0, 0.1, size=n_cases)
        base.append(MeanOfCases(base_values))
        arm.append(MeanOfCases(base_values + shift + rng.normal(0.0, 0.1, size=n_cases)))
    result = compare(arm, base, ids, n_boot=2000, seed=0)
    assert result.boot_ci[0] < shift < result.boot_ci[1]
    assert result.boot_ci[0] > 0
    assert result.t_ci[0] < shift < result.t_ci[1]
    assert result.p_value < 0.01


def test_compare_with_macro_f1_pairs_seeds() -> None:
    rng = np.random.default_rng(14)
    n_cases, n_labels = 120, 4
    target = _binary(rng, (n_cases, n_labels))
    ids = [f"p{i // 2}" for i in range(n_cases)]
    arm, base, diffs = [], [], []
    for _ in range(3):
        base_pred = np.where(rng.random(target.shape) < 0.7, target, 1 - target)
        arm_pred = np.where(rng.random(target.shape) < 0.85, target, 1 - target)
        arm.append(MacroF1(arm_pred, target))
        base.append(MacroF1(base_pred, target))
        diffs.append(
            f1_score(target, arm_pred, average="macro", zero_division=0)
            - f1_score(target, base_pred, average="macro", zero_division=0)
        )
    result = compare(arm, base, ids, n_boot=500, seed=0)
    assert result.delta == pytest.approx(np.mean(diffs), abs=1e-12)
    assert result.boot_ci[0] < result.delta < result.boot_ci[1]
    assert result.boot_ci[0] > 0
    assert compare(arm, base, ids, n_boot=500, seed=0) == result


# --- multiplicity correction -----------------------------------------------------------------


def test_correct_by_hand() -> None:
    p = [0.01, 0.04, 0.03]
    assert correct(p, "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert correct(p, "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert correct([0.5, 0.6], "bonferroni") == [1.0, 1.0]
    assert correct([], "holm") == []
    with pytest.raises(ValueError, match="method must be one of .*got 'fdr_bh'"):
        correct(p, "fdr_bh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]; got \[0.1, nan\]"):
        correct([0.1, float("nan")], "holm")


@pytest.mark.parametrize(("method", "sm_method"), [("holm", "holm"), ("bonferroni", "bonferroni")])
def test_correct_matches_statsmodels(method: Literal["holm", "bonferroni"], sm_method: str) -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(15).random(12) ** 3
    _, expected, _, _ = multitest.multipletests(p, method=sm_method)
    assert correct(p.tolist(), method) == pytest.approx(expected.tolist(), abs=1e-12)
