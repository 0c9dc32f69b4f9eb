"""Tests for the primary analysis of cxrbench.stats: combined interval, verdict, family-size correction."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pingouin
import pytest
from scipy import stats as sps

from cxrbench.stats import (
    CombinedInterval,
    MeanOfCases,
    combined_interval,
    compare,
    correct,
    patient_bootstrap_weights,
    verdict,
)

# --- the primary numbers against an independent computation ----------------------------------


def _expected(diffs: np.ndarray, boot: np.ndarray, n_patients: int, confidence: float) -> dict[str, float]:
    """The combined-variance analysis written out with plain numpy/scipy."""
    n = diffs.size
    v_seeds = np.var(diffs, ddof=1) / n
    v_patients = np.var(boot, ddof=1)
    se = math.sqrt(v_seeds + v_patients)
    df = se**4 / (v_seeds**2 / (n - 1) + v_patients**2 / (n_patients - 1))
    q = sps.t.ppf(1 - (1 - confidence) / 2, df)
    delta = diffs.mean()
    return {
        "delta": delta, "se_seeds": math.sqrt(v_seeds), "se_patients": math.sqrt(v_patients), "se": se,
        "df": df, "low": delta - q * se, "high": delta + q * se,
        "p": 2 * sps.t.sf(abs(delta) / se, df), "mde": (q + sps.t.ppf(0.8, df)) * se,
    }


def test_combined_interval_matches_hand_computation() -> None:
    diffs = np.array([0.012, 0.031, -0.004, 0.022, 0.018])
    boot = np.random.default_rng(20).normal(0.016, 0.009, size=400)
    for confidence in (0.95, 0.9):
        got = combined_interval(diffs, boot, n_patients=37, confidence=confidence)
        want = _expected(diffs, boot, 37, confidence)
        assert isinstance(got, CombinedInterval)
        for name in ("delta", "se_seeds", "se_patients", "se", "df", "p", "mde"):
            assert getattr(got, name) == pytest.approx(want[name], rel=1e-12), name
        assert got.ci == pytest.approx((want["low"], want["high"]), rel=1e-12)
    # Satterthwaite df lies between the smaller component df and the sum of both.
    assert 4 <= got.df <= 4 + 36


def test_compare_primary_numbers_match_independent_computation() -> None:
    rng = np.random.default_rng(21)
    n_patients, n_seeds, n_boot, seed = 15, 4, 300, 5
    case_patient = rng.integers(0, n_patients, size=40)
    case_patient[:n_patients] = np.arange(n_patients)  # every patient has a case
    ids = [f"p{j}" for j in case_patient]
    base = rng.random((n_seeds, 40))
    arm = base + rng.normal(0.03, 0.05, size=(n_seeds, 40)) + rng.normal(0, 0.02, size=(n_seeds, 1))
    result = compare([MeanOfCases(a) for a in arm], [MeanOfCases(b) for b in base], ids,
                     n_boot=n_boot, seed=seed, confidence=0.9)

    diffs = arm.mean(axis=1) - base.mean(axis=1)
    # Replicates recomputed with np.average from the same patient weights that compare draws.
    weights = patient_bootstrap_weights(ids, n_boot, np.random.default_rng(seed))
    boot = np.array([np.mean([np.average(a, weights=w) - np.average(b, weights=w) for a, b in zip(arm, base)])
                     for w in weights])
    want = _expected(diffs, boot, n_patients, 0.9)
    assert result.delta == pytest.approx(want["delta"], rel=1e-12)
    assert result.se_seeds == pytest.approx(want["se_seeds"], rel=1e-9)
    assert result.se_patients == pytest.approx(want["se_patients"], rel=1e-9)
    assert result.df == pytest.approx(want["df"], rel=1e-9)
    assert result.primary_ci == pytest.approx((want["low"], want["high"]), rel=1e-9)
    assert result.primary_p == pytest.approx(want["p"], rel=1e-9)
    assert result.mde == pytest.approx(want["mde"], rel=1e-9)
    # Not necessarily wider than the seed t-interval (more df, smaller quantile), but the
    # standard error carries both variances.
    se = (result.primary_ci[1] - result.primary_ci[0]) / 2 / sps.t.ppf(0.95, result.df)
    assert se > max(result.se_seeds, result.se_patients)


# --- coverage and false positives by simulation ----------------------------------------------


def _simulate(n_experiments: int, seed: int, *, delta: float, sd_patient: float, sd_seed: float,
              n_patients: int = 60, cases_per_patient: int = 2, n_seeds: int = 5) -> dict[str, float]:
    """Coverage of the true delta by each interval, and the primary test's rejection rate.

    Each experiment draws test patients from a population whose mean gain is `delta`, a patient's
    gain varying with sd `sd_patient` (test-set sampling), and trains `n_seeds` paired seeds, each
    shifting the arm's scores by N(0, sd_seed) (training noise), plus per-case, per-seed noise.
    """
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n_patients) for _ in range(cases_per_patient)]
    hits = {"primary": 0, "t": 0, "boot": 0, "rejected": 0}
    for k in range(n_experiments):
        level = np.repeat(0.7 + rng.normal(0.0, 0.1, n_patients), cases_per_patient)
        gain = np.repeat(rng.normal(delta, sd_patient, n_patients), cases_per_patient)
        arm, base = [], []
        for _ in range(n_seeds):
            base.append(MeanOfCases(level + rng.normal(0.0, 0.05, len(ids))))
            arm.append(MeanOfCases(level + gain + rng.normal(0.0, sd_seed) + rng.normal(0.0, 0.05, len(ids))))
        r = compare(arm, base, ids, n_boot=200, seed=k)
        hits["primary"] += r.primary_ci[0] <= delta <= r.primary_ci[1]
        hits["t"] += r.t_ci[0] <= delta <= r.t_ci[1]
        hits["boot"] += r.boot_ci[0] <= delta <= r.boot_ci[1]
        hits["rejected"] += r.primary_p < 0.05
    return {name: count / n_experiments for name, count in hits.items()}


@pytest.mark.parametrize(("dominant", "sd_patient", "sd_seed"), [("patients", 0.10, 0.005), ("seeds", 0.02, 0.03)])
def test_primary_interval_covers_while_each_partial_interval_alone_does_not(
    dominant: str, sd_patient: float, sd_seed: float
) -> None:
    # 500 experiments: the Monte-Carlo sd of a 95% coverage is about 0.01.
    coverage = _simulate(500, 1, delta=0.02, sd_patient=sd_patient, sd_seed=sd_seed)
    print(f"{dominant} dominate: {coverage}")
    assert 0.92 <= coverage["primary"] <= 0.98
    if dominant == "patients":
        # The seed t-interval holds the test set fixed: it misses the test-set sampling error.
        assert coverage["t"] < 0.75
        assert coverage["boot"] >= 0.9
    else:
        # The patient bootstrap holds the models fixed: it misses the training noise.
        assert coverage["boot"] < 0.75
        assert coverage["t"] >= 0.9


def test_primary_test_false_positive_rate_under_the_null() -> None:
    rates = _simulate(1000, 2, delta=0.0, sd_patient=0.08, sd_seed=0.02)
    print(f"null: {rates}")
    # 0.05 plus three Monte-Carlo sds (0.007); not vacuously conservative either.
    assert 0.02 <= rates["rejected"] <= 0.07


# --- verdict ---------------------------------------------------------------------------------


def test_verdict_three_ways() -> None:
    assert verdict(0.02, 0.01) == "helps"
    assert verdict(-0.02, 0.01) == "hurts"
    assert verdict(0.02, 0.2) == "no detectable difference"
    assert verdict(-0.02, 0.05) == "no detectable difference"  # strict: p must be below alpha
    assert verdict(0.02, 0.07, alpha=0.1) == "helps"
    assert verdict(0.0, 0.0) == "no detectable difference"
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        verdict(0.1, 0.01, alpha=0.0)
    with pytest.raises(ValueError, match=r"p_corrected must lie in \[0, 1\]"):
        verdict(0.1, float("nan"))


# --- correction over a family larger than the p-values at hand -------------------------------


@pytest.mark.parametrize(("method", "pg_method"), [("holm", "holm"), ("bonferroni", "bonf")])
def test_correct_with_family_size_pads_with_ones(method: Literal["holm", "bonferroni"], pg_method: str) -> None:
    p = [0.01, 0.004, 0.03]
    _, expected = pingouin.multicomp(np.array([*p, 1.0, 1.0]), method=pg_method)
    assert correct(p, method, family_size=5) == pytest.approx(expected[:3].tolist(), abs=1e-15)
    assert correct(p, method, family_size=3) == correct(p, method)
    assert correct([], method, family_size=4) == []


def test_correct_with_family_size_by_hand() -> None:
    assert correct([0.01, 0.004], "bonferroni", family_size=4) == pytest.approx([0.04, 0.016])
    # Holm over 4: 0.004 * 4, then max(0.016, 0.01 * 3).
    assert correct([0.01, 0.004], "holm", family_size=4) == pytest.approx([0.03, 0.016])
    with pytest.raises(ValueError, match=r"family_size \(2\) must be at least the number of p-values \(3\)"):
        correct([0.1, 0.2, 0.3], "holm", family_size=2)


# --- degenerate input ------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "p_expected"), [(0.05, 0.0), (0.0, 1.0), (-0.05, 0.0)])
def test_combined_interval_degenerate_when_both_components_vanish(delta: float, p_expected: float) -> None:
    got = combined_interval([delta] * 4, np.full(100, delta), n_patients=12)
    assert got == CombinedInterval(delta=delta, se_seeds=0.0, se_patients=0.0, se=0.0, df=3.0 + 11.0,
                                   ci=(delta, delta), p=p_expected, mde=0.0)


def test_combined_interval_one_vanishing_component_adds_no_df() -> None:
    boot = np.random.default_rng(22).normal(0.0, 0.01, size=300)
    only_patients = combined_interval([0.01] * 5, boot, n_patients=30)
    assert only_patients.se_seeds == 0.0
    assert only_patients.df == pytest.approx(29.0)
    only_seeds = combined_interval([0.01, 0.03, 0.02], np.full(50, 0.02), n_patients=1)
    assert only_seeds.se_patients == 0.0
    assert only_seeds.df == pytest.approx(2.0)


def test_compare_identical_arms_is_degenerate_and_finite() -> None:
    values = np.random.default_rng(23).random(20)
    ids = [f"p{i // 2}" for i in range(20)]
    r = compare([MeanOfCases(values)] * 3, [MeanOfCases(values)] * 3, ids, n_boot=200)
    assert (r.se_seeds, r.se_patients, r.primary_ci, r.primary_p, r.mde) == (0.0, 0.0, (0.0, 0.0), 1.0, 0.0)
    assert math.isfinite(r.df)


def test_combined_interval_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="diffs must be a 1-D array of at least 2 finite values"):
        combined_interval([0.1], np.zeros(10), n_patients=5)
    with pytest.raises(ValueError, match="boot_replicates must be a 1-D array of at least 2 finite values"):
        combined_interval([0.1, 0.2], [0.1, float("nan")], n_patients=5)
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        combined_interval([0.1, 0.2], np.zeros(10), n_patients=5, confidence=95)
    with pytest.raises(ValueError, match="one patient"):
        combined_interval([0.1, 0.2], [0.1, 0.2], n_patients=1)
    with pytest.raises(ValueError, match="n_boot must be >= 2"):
        compare([MeanOfCases(np.ones(3))] * 2, [MeanOfCases(np.ones(3))] * 2, ["a", "b", "c"], n_boot=1)
