"""From stored per-case predictions to scores, paired differences, intervals and corrected p-values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cache import Cache
from .plan import Arm, TaskPlan
from .predictions import load_predictions
from .protocol import ArmRole, references
from .registry import generator_class
from .samples import Splits
from .schemas import ArmResult, ComparisonResult, SeedScore, TaskResult
from .stats import CaseMetric, Comparison, compare, correct
from .task import Predictions, Task

METHODS = {
    "score": "per seed: classification macro F1 over labels (per-label threshold maximising F1 on val; a "
             "single-label task: macro F1 of its two classes, the label and its absence); segmentation mean "
             "per-image Dice (MONAI DiceMetric, empty target and prediction = 1) after a threshold and minimum "
             "area chosen on val",
    "delta": "mean over seeds of (arm - reference) with the same seeds; the reference is real_only, and for a "
             "generator also every baseline (e.g. classic_aug) run at the same ratio, and the generator it is a "
             "variant of (e.g. ldm_mask for ldm_mask_proxy)",
    "t_ci": "95% t-interval of the per-seed paired differences (scipy.stats.t)",
    "boot_ci": "95% percentile bootstrap over test patients (cluster resampling, same resample for every seed "
               "and both arms)",
    "p_value": "one-sided paired t-test over seeds, H1: arm > reference (scipy.stats.ttest_rel)",
    "p_holm": "Holm correction across all comparisons of the run (pingouin.multicomp)",
    "p_bonferroni": "Bonferroni correction across all comparisons of the run (pingouin.multicomp)",
}


@dataclass(frozen=True)
class ArmPredictions:
    """One arm's stored test predictions, one entry per seed: what every reported number is computed from."""

    generator: str
    revision: str
    role: str
    ratio: float
    n_synthetic: int
    seeds: list[tuple[int, str, Predictions]]
    """(seed, cell key, predictions) in seed order."""
    variant_of: str | None = None
    """The generator this arm's generator refines (e.g. ldm_mask for ldm_mask_proxy): also a reference."""

    @property
    def protocol_role(self) -> ArmRole:
        return ArmRole(self.generator, self.role, self.ratio, self.variant_of)


@dataclass(frozen=True)
class TaskPredictions:
    """A task's arms to score: every arm in `arms` is compared; `references` only serve as comparators."""

    task: Task
    splits: Splits
    baseline: ArmPredictions
    arms: list[ArmPredictions]
    references: list[ArmPredictions]

    def scored_arms(self) -> list[ArmPredictions]:
        """The arms and references, each once (an arm may also be a reference, e.g. classic_aug in a run)."""
        unique = {(arm.generator, arm.ratio): arm for arm in [*self.arms, *self.references]}
        return list(unique.values())


@dataclass(frozen=True)
class _Scored:
    metrics: list[CaseMetric]
    result: ArmResult


@dataclass(frozen=True)
class _Pair:
    """One comparison the protocol asks for: an arm against one of its references, with its statistics."""

    task: int
    arm: _Scored
    reference: _Scored
    stats: Comparison


def _score_arm(task: Task, splits: Splits, arm: ArmPredictions) -> _Scored:
    metrics, seeds = [], []
    for seed, cell, predictions in arm.seeds:
        scores = task.case_metric(predictions, splits)
        metrics.append(scores.metric)
        seeds.append(SeedScore(seed=seed, score=scores.metric.value(), per_label=scores.per_label,
                               secondary=scores.secondary, cell=cell))
    scores = np.array([s.score for s in seeds])
    result = ArmResult(generator=arm.generator, generator_revision=arm.revision, ratio=arm.ratio,
                       n_real=len(splits.train), n_synthetic=arm.n_synthetic, seeds=seeds,
                       mean=float(scores.mean()), std=float(scores.std(ddof=1)) if len(scores) > 1 else 0.0)
    return _Scored(metrics, result)


def score_predictions(tasks: list[TaskPredictions], *, n_boot: int) -> list[TaskResult]:
    """Score every task, in three plain steps: score each arm, compare each (arm, reference) pair the
    protocol asks for (`protocol.references`), correct the p-values of all pairs of the call as one family.

    The runner and the submission validator both score through here, so a submitted number is
    recomputed by the very code that produced it.
    """
    baselines, scored, pairs = [], [], []
    for index, item in enumerate(tasks):
        baseline = _score_arm(item.task, item.splits, item.baseline)
        arms = item.scored_arms()
        by_arm = {(arm.generator, arm.ratio): _score_arm(item.task, item.splits, arm) for arm in arms}
        patients = item.splits.test.patient_ids.tolist()
        for arm in item.arms:
            own = by_arm[(arm.generator, arm.ratio)]
            others = references(arm.protocol_role, [other.protocol_role for other in arms])
            for reference in [baseline, *(by_arm[(r.generator, r.ratio)] for r in others)]:
                stats = compare(own.metrics, reference.metrics, patients, n_boot=n_boot, seed=0)
                pairs.append(_Pair(index, own, reference, stats))
        baselines.append(baseline)
        scored.append([by_arm[(arm.generator, arm.ratio)].result for arm in arms])
    p_values = [pair.stats.p_value for pair in pairs]
    holm, bonferroni = correct(p_values, "holm"), correct(p_values, "bonferroni")
    comparisons: list[list[ComparisonResult]] = [[] for _ in tasks]
    for pair, p_holm, p_bonferroni in zip(pairs, holm, bonferroni, strict=True):
        c = pair.stats
        comparisons[pair.task].append(ComparisonResult(
            generator=pair.arm.result.generator, ratio=pair.arm.result.ratio, reference=pair.reference.result.generator,
            reference_mean=c.baseline_mean, arm_mean=c.arm_mean, delta=c.delta, t_ci=c.t_ci, boot_ci=c.boot_ci,
            p_value=c.p_value, p_holm=p_holm, p_bonferroni=p_bonferroni, n_seeds=c.n_seeds))
    return [_task_result(item, baseline, arms, compared)
            for item, baseline, arms, compared in zip(tasks, baselines, scored, comparisons, strict=True)]


def _task_result(item: TaskPredictions, baseline: _Scored, arms: list[ArmResult],
                 comparisons: list[ComparisonResult]) -> TaskResult:
    test = item.splits.test
    return TaskResult(task=item.task.meta, n_train_real=len(item.splits.train), n_val=len(item.splits.val),
                      n_test=len(test), n_test_patients=len(set(test.patient_ids.tolist())),
                      baseline=baseline.result, arms=arms, comparisons=comparisons)


def arm_predictions(arm: Arm, cache: Cache) -> ArmPredictions:
    """A planned arm's predictions, read from the cache."""
    meta = generator_class(arm.generator).meta
    return ArmPredictions(generator=arm.generator, revision=arm.revision, role=meta.role, ratio=arm.ratio,
                          n_synthetic=arm.cells[0].n_synthetic,
                          seeds=[(cell.seed, cell.key, load_predictions(cache, cell)) for cell in arm.cells],
                          variant_of=meta.variant_of)


def score_run(plans: list[TaskPlan], cache: Cache, *, n_boot: int) -> list[TaskResult]:
    """Score a run's plans from the cache: every arm compared, the baseline-role arms also as references."""
    tasks = []
    for plan in plans:
        arms = [arm_predictions(arm, cache) for arm in plan.arms]
        tasks.append(TaskPredictions(plan.task, plan.splits, arm_predictions(plan.baseline, cache), arms,
                                     [arm for arm in arms if arm.role == "baseline"]))
    return score_predictions(tasks, n_boot=n_boot)
