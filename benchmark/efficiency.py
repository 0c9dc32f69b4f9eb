"""Transfer efficiency: how much of the real pool's value an arm delivers, Δ(arm) / Δ(real_extra).

Both differences are taken against the same real_only arm, over the same paired seeds and the same
test patients, so they are correlated; the ratio's interval must use their joint covariance, not two
separate intervals. The covariance has the primary analysis's two components (`stats.combined_interval`):
the per-seed differences' sample covariance over n_seeds (training noise) plus the covariance of
their patient-bootstrap replicates, drawn with one set of patient weights for both arms
(`stats.boot_differences`; test-set sampling).

The interval is Fieller's: the set of ratios θ that the primary test of the contrast Δ(arm) − θ·Δ(real_extra)
does not reject, i.e. (Δa − θΔr)² ≤ t² (Vaa − 2θVar + θ²Vrr), with t at the Satterthwaite df of that contrast
at the estimate. Unlike a delta-method interval it is exact for a ratio of normal means and honest when the
denominator is small: the set is a bounded interval only when Δ(real_extra) is itself distinguishable from 0.
When the primary interval of Δ(real_extra) includes 0 the ratio says nothing (the pool showed no detectable
value to deliver), so no value is given, only the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .stats import CaseMetric, boot_differences, combined_interval


@dataclass(frozen=True)
class RatioInterval:
    """Δ(arm) / Δ(pool) and its Fieller interval; value and ci are None when the ratio is not meaningful, `note`
    saying why (or warning how to read a meaningful one)."""

    value: float | None
    ci: tuple[float, float] | None
    note: str | None = None


def transfer_ratio(
    arm: Sequence[CaseMetric],
    pool: Sequence[CaseMetric],
    baseline: Sequence[CaseMetric],
    patient_ids: Sequence[str],
    *,
    n_boot: int,
    seed: int = 0,
    confidence: float = 0.95,
) -> RatioInterval:
    """Δ(arm) / Δ(pool), both against `baseline`; arm[i], pool[i] and baseline[i] come from the same seed.

    With the seed the comparisons use, Δ(pool)'s interval here is the primary interval of the pool's own
    comparison with the baseline (the same per-seed differences and bootstrap weights).
    """
    if not len(arm) == len(pool) == len(baseline) >= 2:
        raise ValueError(f"arm, pool and baseline must pair over at least 2 seeds; got {len(arm)}, {len(pool)} and "
                         f"{len(baseline)}")
    diffs = np.array([[a.value() - b.value() for a, b in zip(side, baseline, strict=True)] for side in (arm, pool)])
    boot = boot_differences([arm, pool], baseline, patient_ids, n_boot=n_boot, seed=seed)
    n_patients = len(np.unique(np.asarray(patient_ids)))
    own = combined_interval(diffs[1], boot[1], n_patients, confidence)
    if own.ci[0] <= 0 <= own.ci[1]:
        return RatioInterval(None, None, f"Δ(real_extra) = {own.delta:+.3f}, 95% CI [{own.ci[0]:+.3f}, "
                                         f"{own.ci[1]:+.3f}] includes 0: the pool's value is not detectable here")
    delta_arm, delta_pool = diffs.mean(axis=1)
    value = float(delta_arm / delta_pool)
    contrast = combined_interval(diffs[0] - value * diffs[1], boot[0] - value * boot[1], n_patients, confidence)
    t = float(stats.t.ppf(1 - (1 - confidence) / 2, contrast.df))
    cov = np.cov(diffs, ddof=1) / diffs.shape[1] + np.cov(boot, ddof=1)
    # (Δa − θΔr)² − t²(Vaa − 2θVar + θ²Vrr) ≤ 0, a quadratic a θ² + b θ + c in θ
    a = delta_pool**2 - t**2 * cov[1, 1]
    b = -2 * (delta_arm * delta_pool - t**2 * cov[0, 1])
    c = delta_arm**2 - t**2 * cov[0, 0]
    if a <= 0:
        return RatioInterval(None, None, f"Δ(real_extra) = {delta_pool:+.3f} is too uncertain for the ratio: its "
                                         f"Fieller interval is unbounded")
    half = np.sqrt(max(b**2 - 4 * a * c, 0.0))  # ≥ 0 in exact arithmetic: the estimate lies in the set
    ci = (float((-b - half) / (2 * a)), float((-b + half) / (2 * a)))
    note = "real_extra hurts here (Δ < 0): a positive ratio means the arm hurts too" if delta_pool < 0 else None
    return RatioInterval(value, ci, note)
