"""From stored per-case predictions to scores, paired differences, intervals and corrected p-values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cache import Cache
from .cells import load_predictions
from .plan import Arm, TaskPlan
from .registry import generator_class
from .samples import Splits
from .schemas import ArmResult, ComparisonResult, SeedScore, TaskResult
from .stats import CaseMetric, compare, correct
from .task import Predictions, Task

METHODS = {
    "score": "per seed: classification macro F1 over labels (per-label threshold maximising F1 on val); "
             "segmentation mean per-image Dice (MONAI DiceMetric, empty target and prediction = 1)",
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


@dataclass(frozen=True)
class TaskPredictions:
    """A task's arms to score: every arm in `arms` is compared; `references` only serve as comparators."""

    task: Task
    splits: Splits
    baseline: ArmPredictions
    arms: list[ArmPredictions]
    references: list[ArmPredictions]


def _arm_metrics(task: Task, splits: Splits, arm: ArmPredictions) -> tuple[list[CaseMetric], ArmResult]:
    metrics, seeds = [], []
    for seed, cell, predictions in arm.seeds:
        metric, per_label = task.case_metric(predictions, splits)
        metrics.append(metric)
        seeds.append(SeedScore(seed=seed, score=metric.value(), per_label=per_label, cell=cell))
    scores = np.array([s.score for s in seeds])
    result = ArmResult(generator=arm.generator, generator_revision=arm.revision, ratio=arm.ratio,
                       n_real=len(splits.train), n_synthetic=arm.n_synthetic, seeds=seeds,
                       mean=float(scores.mean()), std=float(scores.std(ddof=1)) if len(scores) > 1 else 0.0)
    return metrics, result


def score_predictions(tasks: list[TaskPredictions], *, n_boot: int) -> list[TaskResult]:
    """Score every task; p-values are corrected across all comparisons of the call together.

    Every arm is compared with real_only; an arm of role "generator" also with each reference arm
    (role "baseline", e.g. classic_aug) at the same ratio, the bar a generator must clear to be worth
    its compute, and with the generator it is a variant of (`GeneratorMeta.variant_of`, e.g. ldm_mask
    for ldm_mask_proxy) when the call holds that one too. The runner and the submission validator both score through here, so a submitted
    number is recomputed by the very code that produced it.
    """
    drafts = []
    for item in tasks:
        base_metrics, baseline = _arm_metrics(item.task, item.splits, item.baseline)
        unique = list({id(arm): arm for arm in [*item.arms, *item.references]}.values())
        scored = {id(arm): _arm_metrics(item.task, item.splits, arm) for arm in unique}
        patients = item.splits.test.patient_ids.tolist()
        comparisons = []
        for arm in item.arms:
            metrics, result = scored[id(arm)]
            references = [(baseline, base_metrics)]
            if arm.role == "generator":
                references += [scored[id(ref)][::-1] for ref in unique if ref.ratio == arm.ratio and ref is not arm
                               and (ref.role == "baseline" or ref.generator == arm.variant_of)]
            comparisons += [(result, reference, compare(metrics, reference_metrics, patients, n_boot=n_boot, seed=0))
                            for reference, reference_metrics in references]
        drafts.append((item, baseline, [scored[id(arm)][1] for arm in unique], comparisons))
    p_values = [c.p_value for _, _, _, comps in drafts for _, _, c in comps]
    holm, bonferroni = iter(correct(p_values, "holm")), iter(correct(p_values, "bonferroni"))
    results = []
    for item, baseline, arms, comps in drafts:
        comparisons = [
            ComparisonResult(generator=arm.generator, ratio=arm.ratio, reference=reference.generator,
                             reference_mean=c.baseline_mean, arm_mean=c.arm_mean, delta=c.delta, t_ci=c.t_ci,
                             boot_ci=c.boot_ci, p_value=c.p_value, p_holm=next(holm), p_bonferroni=next(bonferroni),
                             n_seeds=c.n_seeds)
            for arm, reference, c in comps
        ]
        test = item.splits.test
        results.append(TaskResult(task=item.task.meta, n_train_real=len(item.splits.train), n_val=len(item.splits.val),
                                  n_test=len(test), n_test_patients=len(set(test.patient_ids.tolist())),
                                  baseline=baseline, arms=arms, comparisons=comparisons))
    return results


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
