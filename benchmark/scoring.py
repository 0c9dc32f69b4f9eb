"""From stored per-case predictions to scores, paired differences, intervals and corrected p-values."""

from __future__ import annotations

import numpy as np

from .cache import Cache
from .cells import load_predictions
from .plan import Arm, TaskPlan
from .registry import generator_class
from .schemas import ArmResult, ComparisonResult, SeedScore, TaskResult
from .stats import CaseMetric, compare, correct

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


def _arm_metrics(plan: TaskPlan, arm: Arm, cache: Cache) -> tuple[list[CaseMetric], ArmResult]:
    metrics, seeds = [], []
    for cell in arm.cells:
        metric, per_label = plan.task.case_metric(load_predictions(cache, cell), plan.splits)
        metrics.append(metric)
        seeds.append(SeedScore(seed=cell.seed, score=metric.value(), per_label=per_label, cell=cell.key))
    scores = np.array([s.score for s in seeds])
    result = ArmResult(generator=arm.generator, generator_revision=arm.revision, ratio=arm.ratio,
                       n_real=len(plan.splits.train), n_synthetic=arm.cells[0].n_synthetic, seeds=seeds,
                       mean=float(scores.mean()), std=float(scores.std(ddof=1)) if len(scores) > 1 else 0.0)
    return metrics, result


def score_run(plans: list[TaskPlan], cache: Cache, *, n_boot: int) -> list[TaskResult]:
    """Score every task; p-values are corrected across all comparisons of the run together.

    Every arm is compared with real_only; a generator's arm also with each baseline arm (role
    "baseline", e.g. classic_aug) at the same ratio, the bar a generator must clear to be worth its compute,
    and with the generator it is a variant of (`GeneratorMeta.variant_of`) when the run holds that one too.
    """
    drafts = []
    for plan in plans:
        base_metrics, baseline = _arm_metrics(plan, plan.baseline, cache)
        scored = [(arm, *_arm_metrics(plan, arm, cache)) for arm in plan.arms]
        patients = plan.splits.test.patient_ids.tolist()
        comparisons = []
        for arm, metrics, result in scored:
            references = [(baseline, base_metrics)]
            meta = generator_class(arm.generator).meta
            if meta.role == "generator":
                references += [(other, other_metrics) for other_arm, other_metrics, other in scored
                               if other_arm.ratio == arm.ratio and (generator_class(other_arm.generator).meta.role == "baseline"
                                                                    or other_arm.generator == meta.variant_of)]
            comparisons += [(result, reference, compare(metrics, reference_metrics, patients, n_boot=n_boot, seed=0))
                            for reference, reference_metrics in references]
        drafts.append((plan, baseline, [result for _, _, result in scored], comparisons))
    p_values = [c.p_value for _, _, _, comps in drafts for _, _, c in comps]
    holm, bonferroni = iter(correct(p_values, "holm")), iter(correct(p_values, "bonferroni"))
    results = []
    for plan, baseline, arms, comps in drafts:
        comparisons = [
            ComparisonResult(generator=arm.generator, ratio=arm.ratio, reference=reference.generator,
                             reference_mean=c.baseline_mean, arm_mean=c.arm_mean, delta=c.delta, t_ci=c.t_ci,
                             boot_ci=c.boot_ci, p_value=c.p_value, p_holm=next(holm), p_bonferroni=next(bonferroni),
                             n_seeds=c.n_seeds)
            for arm, reference, c in comps
        ]
        test = plan.splits.test
        results.append(TaskResult(task=plan.task.meta, n_train_real=len(plan.splits.train), n_val=len(plan.splits.val),
                                  n_test=len(test), n_test_patients=len(set(test.patient_ids.tolist())),
                                  baseline=baseline, arms=arms, comparisons=comparisons))
    return results
