"""Subgroup effects: an arm's Δ among one patient group's test cases, and the gap between two groups.

The primary analysis (`stats.combined_interval`) is reused unchanged on a restriction of the test set: the same
seeds, the same models and thresholds (a classification threshold stays the one chosen on the whole val split), the
same cluster bootstrap, over the group's patients only. The gap Δ_A − Δ_B pairs the seeds (one model per seed scores
both groups) and resamples the two groups' patients independently (another stream per group), so its bootstrap
variance is the sum of theirs; its patient df is taken from the smaller group, a lower bound of their
Satterthwaite df, so the interval errs wide. The subgroup p-values are Holm-corrected over the comparison's own
subgroup hypotheses (every group's Δ and every gap): a family of their own, which leaves the entry's primary family
and verdicts as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .protocol import AGE_CUT, ALPHA, SUBGROUP_MIN_PATIENTS
from .schemas import AttributeEffects, SubgroupAnalysis, SubgroupDelta, SubgroupGap
from .stats import CaseMetric, CombinedInterval, boot_differences, combined_interval, correct, verdict

Subgroups = dict[str, dict[str, np.ndarray]]
"""Patient attributes of a test split: attribute -> group -> boolean mask over the test rows. A row in no group of
an attribute has no known value for it (e.g. a blank age)."""

SEXES = ("F", "M")


def value_groups(values: Sequence[str | None]) -> dict[str, np.ndarray]:
    """One boolean mask per distinct value, in sorted order; None is in no group."""
    array = np.array([v if v is not None else "" for v in values], dtype=object)
    return {str(v): array == v for v in sorted({v for v in values if v is not None})}


def age_band(age: float | None) -> str | None:
    """`<60` or `>=60` (`protocol.AGE_CUT`); None stays None."""
    if age is None:
        return None
    return f"<{AGE_CUT}" if age < AGE_CUT else f">={AGE_CUT}"


def sex_and_age(sexes: Sequence[str | None], ages: Sequence[float | None]) -> Subgroups:
    """The `sex` (F, M) and `age` (two bands) attributes from one value per test row (None: unknown)."""
    return {"sex": value_groups(sexes), "age": value_groups([age_band(a) for a in ages])}


class Restricted(CaseMetric):
    """A case metric on some of its cases: the others weigh 0, so the score is the metric of those cases alone."""

    def __init__(self, metric: CaseMetric, rows: np.ndarray) -> None:
        self._metric = metric
        self._rows = np.asarray(rows)

    @property
    def n_cases(self) -> int:
        return int(self._rows.size)

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights)
        if w.ndim != 2 or w.shape[1] != self.n_cases:
            raise ValueError(f"weights must have shape (B, {self.n_cases}); got {w.shape}")
        full = np.zeros((w.shape[0], self._metric.n_cases), dtype=w.dtype if w.dtype.kind == "f" else np.float64)
        full[:, self._rows] = w
        return self._metric.weighted(full)


@dataclass(frozen=True)
class _Effect:
    """One group's Δ with what its gap needs: the per-seed differences and the bootstrap replicates."""

    result: SubgroupDelta
    interval: CombinedInterval | None
    per_seed: np.ndarray | None
    replicates: np.ndarray | None


def _reason(rows: np.ndarray, patient_ids: np.ndarray, labels: np.ndarray | None, label_names: Sequence[str],
            min_patients: int) -> str | None:
    """Why the group gets no number (too few patients; a label without a positive case), or None."""
    n_patients = len(np.unique(patient_ids[rows]))
    if n_patients < min_patients:
        return f"{n_patients} test patient(s), fewer than the {min_patients} a subgroup Δ needs"
    if labels is not None:
        missing = [name for name, column in zip(label_names, labels[rows].T, strict=True) if not column.any()]
        if missing:
            return f"no positive case of {', '.join(missing)} among the group's test cases (F1 undefined)"
    return None


def _group_effect(group: str, rows: np.ndarray, arm: Sequence[CaseMetric], baseline: Sequence[CaseMetric],
                  patient_ids: np.ndarray, labels: np.ndarray | None, label_names: Sequence[str], *, n_boot: int,
                  seed: int, min_patients: int) -> _Effect:
    n_patients, n_cases = len(np.unique(patient_ids[rows])), int(rows.size)
    reason = _reason(rows, patient_ids, labels, label_names, min_patients)
    if reason is not None:
        return _Effect(SubgroupDelta(group=group, n_patients=n_patients, n_cases=n_cases, reason=reason),
                       None, None, None)
    arm_in, base_in = [Restricted(m, rows) for m in arm], [Restricted(m, rows) for m in baseline]
    per_seed = np.array([a.value() - b.value() for a, b in zip(arm_in, base_in, strict=True)])
    replicates = boot_differences([arm_in], base_in, patient_ids[rows].tolist(), n_boot=n_boot, seed=seed)[0]
    interval = combined_interval(per_seed, replicates, n_patients)
    result = SubgroupDelta(group=group, n_patients=n_patients, n_cases=n_cases, delta=interval.delta,
                           ci=interval.ci, p=interval.p, mde=interval.mde)
    return _Effect(result, interval, per_seed, replicates)


def _gap(first: _Effect, second: _Effect) -> SubgroupGap:
    groups = (first.result.group, second.result.group)
    if first.interval is None or second.interval is None:
        return SubgroupGap(groups=groups, reason="a group has no Δ (see its reason)")
    interval = combined_interval(first.per_seed - second.per_seed, first.replicates - second.replicates,
                                 min(first.result.n_patients, second.result.n_patients))
    return SubgroupGap(groups=groups, delta=interval.delta, ci=interval.ci, p=interval.p)


def _finding(attribute: str, groups: list[SubgroupDelta], gap: SubgroupGap | None) -> str | None:
    """The sentence a reader must not miss: the arm helps one group and hurts another; else a gap that is there."""
    helps = [g.group for g in groups if g.verdict == "helps"]
    hurts = [g.group for g in groups if g.verdict == "hurts"]
    if helps and hurts:
        return f"{attribute}: helps {', '.join(helps)}, hurts {', '.join(hurts)}"
    if gap is not None and gap.p_holm is not None and gap.p_holm < ALPHA:
        low, high = gap.ci
        return f"{attribute}: gap {gap.groups[0]} − {gap.groups[1]} {gap.delta:+.3f} [{low:+.3f}, {high:+.3f}]"
    return None


def analyse(arm: Sequence[CaseMetric], baseline: Sequence[CaseMetric], patient_ids: Sequence[str],
            subgroups: Subgroups, *, labels: np.ndarray | None, label_names: Sequence[str], n_boot: int,
            seed: int = 0, min_patients: int = SUBGROUP_MIN_PATIENTS) -> SubgroupAnalysis | None:
    """Every group's Δ and every two-group attribute's gap, Holm-corrected together; None without attributes.

    `labels` (test rows x labels): a group where a label has no positive case gets no number (F1 is undefined
    there); None for a metric that needs none (Dice). Group k of an attribute bootstraps with `seed + k`."""
    if not subgroups:
        return None
    ids = np.asarray(patient_ids)
    effects: dict[str, list[_Effect]] = {}
    for attribute, groups in subgroups.items():
        effects[attribute] = [_group_effect(group, np.flatnonzero(mask), arm, baseline, ids, labels, label_names,
                                            n_boot=n_boot, seed=seed + k, min_patients=min_patients)
                              for k, (group, mask) in enumerate(groups.items())]
    gaps = {attribute: _gap(*found) if len(found) == 2 else None for attribute, found in effects.items()}
    tested = [e.result for found in effects.values() for e in found] + [g for g in gaps.values() if g is not None]
    p_values = [t.p for t in tested if t.p is not None]
    holm = iter(correct(p_values, "holm", family_size=len(tested)))
    for hypothesis in tested:
        if hypothesis.p is not None:
            hypothesis.p_holm = next(holm)
            if isinstance(hypothesis, SubgroupDelta):
                hypothesis.verdict = verdict(hypothesis.delta, hypothesis.p_holm, ALPHA)
    attributes = []
    for attribute, found in effects.items():
        groups = [e.result for e in found]
        covered = np.logical_or.reduce([subgroups[attribute][g.group] for g in groups]) if groups else \
            np.zeros(ids.size, bool)
        unassigned = len(set(ids[~covered].tolist()) - set(ids[covered].tolist()))
        attributes.append(AttributeEffects(attribute=attribute, groups=groups, gap=gaps[attribute],
                                           unassigned_patients=unassigned,
                                           finding=_finding(attribute, groups, gaps[attribute])))
    return SubgroupAnalysis(attributes=attributes, family_size=len(tested))
