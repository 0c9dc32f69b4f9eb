"""From stored per-case predictions to scores, paired differences, intervals and corrected p-values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cache import Cache
from .efficiency import RatioInterval, transfer_ratio
from .plan import Arm, TaskPlan
from .predictions import load_predictions
from .protocol import ALPHA, BASELINE, POOL_CONTROL, FamilyMember, family, profiled_meta, required_references
from .registry import generator_class, suite_tasks, task_class
from .samples import Splits
from .schemas import (
    ArmResult,
    ComparisonResult,
    GeneratorMeta,
    Profile,
    SeedScore,
    SubgroupAnalysis,
    TaskMeta,
    TaskResult,
    TransferEfficiency,
)
from .stats import CaseMetric, Comparison, compare, correct, verdict
from .subgroups import Subgroups, analyse
from .task import Predictions, Task

METHODS = {
    "score": "per seed: classification macro F1 (per-label threshold maximising F1 on val, ties to the lowest; a "
             "single-label task averages the F1 of the label and of its absence); segmentation mean per-image Dice "
             "(MONAI DiceMetric, empty target and prediction = 1) after a threshold and minimum area chosen on val",
    "delta": "mean over seeds of (arm - reference) with the same seeds, in the same regime; the reference is "
             "real_only, and for a generator also classic_aug at the same ratio and the generator it is a variant of",
    "ci": "primary 95% interval: Δ ± t(df) · sqrt(se_seeds² + se_patients²), se_seeds from the per-seed paired "
          "differences, se_patients from the patient bootstrap of the mean difference, df by Welch-Satterthwaite",
    "p": "primary two-sided p of the same t statistic",
    "p_holm": "Holm correction of `p` over the entry's family: every comparison the protocol requires of the "
              "generator on the suite (each task it serves, each regime, each default ratio, each reference), "
              "plus any extra comparison the run adds; a missing member counts as p = 1",
    "p_bonferroni": "Bonferroni correction of `p` over the same family",
    "verdict": "helps if p_holm < 0.05 and Δ > 0, hurts if p_holm < 0.05 and Δ < 0, else no detectable difference "
               "(then mde says what the test could have seen)",
    "mde": "minimum detectable |Δ| at 80% power, two-sided α = 0.05: (t(df, 0.975) + t(df, 0.80)) · se",
    "t_ci": "secondary: 95% t-interval of the per-seed paired differences alone (scipy.stats.t; test set fixed)",
    "boot_ci": "secondary: 95% percentile bootstrap over test patients alone (cluster resampling, same resample for "
               "every seed and both arms; models fixed)",
    "p_t_greater": "secondary: one-sided paired t-test over seeds, H1: arm > reference (scipy.stats.ttest_rel), "
                   "uncorrected: the paper's test",
    "transfer_efficiency": "Δ(arm) / Δ(real_extra), both against real_only at the same ratio and seeds; 95% Fieller "
                           "interval from their joint covariance (per-seed covariance / n_seeds plus the covariance "
                           "of the paired patient-bootstrap replicates), t at the Satterthwaite df of "
                           "Δ(arm) − ratio · Δ(real_extra); none when Δ(real_extra)'s primary interval includes 0",
    "quality": "per synthetic arm, its set of the run's first seed at its first ratio: FID, KID, precision, recall, "
               "density, coverage (k = 5) against the real test split with bias-corrected percentile bootstrap "
               "intervals (200 replicates), also per condition group; memorisation: the share of synthetic images "
               "nearer a regime training image than the 5% nearest real test images, in the feature space and in "
               "pixels (Wilson interval, beta-binomial p); re-identification: the same share for a patient "
               "verifier's same-patient call on each image and its nearest training image. Features from one "
               "extractor per task (named with its weights' sha256), trained like the verifier on the task's "
               "largest regime's real training split",
    "subgroups": "against real_only, for a task with patient attributes (sex; age < 60 / >= 60): Δ, interval and p as "
                 "the primary analysis on one group's test cases (same seeds and models, bootstrap over the group's "
                 "patients); the gap Δ_A − Δ_B of a two-group attribute with the seeds paired and the groups' patients "
                 "resampled independently (patient df from the smaller group); Holm over the comparison's group Δs and "
                 "gaps, a family apart from the entry's primary one; a group with under 10 test patients, or without "
                 "a positive case of a classification label, gets a reason instead of a number",
}


@dataclass(frozen=True)
class ArmPredictions:
    """One arm's stored test predictions, one entry per seed: what every reported number is computed from."""

    meta: GeneratorMeta
    revision: str
    ratio: float
    n_synthetic: int
    seeds: list[tuple[int, str, Predictions]]
    """(seed, cell key, predictions) in seed order."""

    @property
    def generator(self) -> str:
        return self.meta.name


@dataclass(frozen=True)
class TaskPredictions:
    """A task's arms in one regime: every arm in `arms` is compared; `references` only serve as comparators."""

    task: Task
    regime: str
    splits: Splits
    baseline: ArmPredictions
    arms: list[ArmPredictions]
    references: list[ArmPredictions]
    subgroups: Subgroups = field(default_factory=dict)
    """The test patients' attributes (`Task.subgroups`): each comparison against real_only is also made per group."""

    def scored_arms(self) -> list[ArmPredictions]:
        """The arms and references, each once (an arm may also be a reference, e.g. classic_aug in a run)."""
        unique = {(arm.generator, arm.ratio): arm for arm in [*self.arms, *self.references]}
        return list(unique.values())


@dataclass(frozen=True)
class ScoredRun:
    tasks: list[TaskResult]
    incomplete: dict[str, list[str]]
    """Per generator, the members of its protocol family that the scored predictions lack."""


@dataclass(frozen=True)
class _Scored:
    metrics: list[CaseMetric]
    result: ArmResult


@dataclass(frozen=True)
class _Pair:
    """One comparison: an arm against one of its references in one task and regime, with its statistics."""

    task: int
    member: FamilyMember
    arm: _Scored
    reference: _Scored
    stats: Comparison
    efficiency: RatioInterval | None
    """Against real_only where the run holds real_extra at the arm's ratio (never for real_extra itself)."""
    subgroups: SubgroupAnalysis | None
    """Against real_only, for a task with patient attributes."""


def _score_arm(task: Task, splits: Splits, arm: ArmPredictions) -> _Scored:
    metrics, seeds = [], []
    for seed, cell, predictions in arm.seeds:
        test_scores = task.case_metric(predictions, splits)
        metrics.append(test_scores.metric)
        seeds.append(SeedScore(seed=seed, score=test_scores.metric.value(), per_label=test_scores.per_label,
                               secondary=test_scores.secondary, cell=cell))
    scores = np.array([s.score for s in seeds])
    result = ArmResult(generator=arm.generator, generator_revision=arm.revision, ratio=arm.ratio,
                       n_real=len(splits.train), n_synthetic=arm.n_synthetic, seeds=seeds,
                       mean=float(scores.mean()), std=float(scores.std(ddof=1)) if len(scores) > 1 else 0.0)
    return _Scored(metrics, result)


def _pairs(index: int, item: TaskPredictions, n_boot: int) -> tuple[_Scored, list[ArmResult], list[_Pair]]:
    """Score the task's arms and compare each arm with each reference the protocol names that the run holds."""
    baseline = _score_arm(item.task, item.splits, item.baseline)
    by_name = {(arm.generator, arm.ratio): _score_arm(item.task, item.splits, arm) for arm in item.scored_arms()}
    patients = item.splits.test.patient_ids.tolist()
    pairs = []
    for arm in item.arms:
        own = by_name[(arm.generator, arm.ratio)]
        for name in required_references(arm.meta):
            reference = baseline if name == BASELINE else by_name.get((name, arm.ratio))
            if reference is None:
                continue  # counted as a missing member of the arm's family
            member = FamilyMember(item.task.meta.name, item.regime, arm.ratio, name)
            stats = compare(own.metrics, reference.metrics, patients, n_boot=n_boot, seed=0)
            pool = by_name.get((POOL_CONTROL, arm.ratio))
            efficiency = (transfer_ratio(own.metrics, pool.metrics, reference.metrics, patients, n_boot=n_boot, seed=0)
                          if name == BASELINE and pool is not None and pool is not own else None)
            subgroups = _subgroups(item, own, reference, n_boot) if name == BASELINE else None
            pairs.append(_Pair(index, member, own, reference, stats, efficiency, subgroups))
    return baseline, [scored.result for scored in by_name.values()], pairs


def _subgroups(item: TaskPredictions, arm: _Scored, reference: _Scored, n_boot: int) -> SubgroupAnalysis | None:
    """The comparison per patient group; a classification group needs a positive case of every label (F1)."""
    test = item.splits.test
    labels = test.labels if item.task.meta.kind == "classification" else None
    return analyse(arm.metrics, reference.metrics, test.patient_ids.tolist(), item.subgroups, labels=labels,
                   label_names=item.task.meta.labels, n_boot=n_boot)


def score_predictions(tasks: list[TaskPredictions], *, n_boot: int, profile: Profile = "protocol") -> ScoredRun:
    """Score every (task, regime) in three plain steps: score each arm; compare each arm with the references the
    protocol names (`protocol.required_references`); correct each generator's p-values over its protocol family
    (`protocol.family` on the suites of these tasks, as `profile` covers them), a missing member counting as p = 1.

    The runner and the submission validator both score through here, so a submitted number is
    recomputed by the very code that produced it.
    """
    scored = [_pairs(index, item, n_boot) for index, item in enumerate(tasks)]
    pairs = [pair for _, _, task_pairs in scored for pair in task_pairs]
    suite_tasks = _suite_task_metas({item.task.meta.suite for item in tasks}, profile)
    comparisons: list[list[ComparisonResult]] = [[] for _ in tasks]
    incomplete = {}
    metas = {arm.generator: arm.meta for item in tasks for arm in item.arms}
    for generator, meta in metas.items():
        own = [pair for pair in pairs if pair.arm.result.generator == generator]
        required = set(family(meta, suite_tasks))
        present = {pair.member for pair in own}
        if required - present:
            incomplete[generator] = sorted(map(str, required - present))
        size = len(required | present)
        primary = [pair.stats.primary_p for pair in own]
        holm = correct(primary, "holm", family_size=size)
        bonferroni = correct(primary, "bonferroni", family_size=size)
        for pair, p_holm, p_bonferroni in zip(own, holm, bonferroni, strict=True):
            comparisons[pair.task].append(_comparison(pair, p_holm, p_bonferroni, size))
    return ScoredRun([_task_result(item, baseline, arms, compared) for item, (baseline, arms, _), compared
                      in zip(tasks, scored, comparisons, strict=True)], incomplete)


def _comparison(pair: _Pair, p_holm: float, p_bonferroni: float, family_size: int) -> ComparisonResult:
    c = pair.stats
    return ComparisonResult(
        generator=pair.arm.result.generator, ratio=pair.arm.result.ratio, reference=pair.member.reference,
        reference_mean=c.baseline_mean, arm_mean=c.arm_mean, delta=c.delta, verdict=verdict(c.delta, p_holm, ALPHA),
        ci=c.primary_ci, p=c.primary_p, p_holm=p_holm, p_bonferroni=p_bonferroni, mde=c.mde, df=c.df,
        se_seeds=c.se_seeds, se_patients=c.se_patients, family_size=family_size, t_ci=c.t_ci, boot_ci=c.boot_ci,
        p_t_greater=c.p_value, n_seeds=c.n_seeds, transfer_efficiency=_efficiency(pair.efficiency),
        subgroups=pair.subgroups)


def _efficiency(ratio: RatioInterval | None) -> TransferEfficiency | None:
    if ratio is None:
        return None
    low, high = ratio.ci or (None, None)
    return TransferEfficiency(value=ratio.value, ci_low=low, ci_high=high, reference=POOL_CONTROL, note=ratio.note)


def _suite_task_metas(suites: set[str], profile: Profile) -> list[TaskMeta]:
    """The suites' tasks as `profile` covers them (under the smoke profile: those that have one, narrowed to it)."""
    classes = [task_class(name) for suite in sorted(suites) for name in suite_tasks(suite)]
    return [profiled_meta(task, profile) for task in classes if profile == "protocol" or task.smoke is not None]


def _task_result(item: TaskPredictions, baseline: _Scored, arms: list[ArmResult],
                 comparisons: list[ComparisonResult]) -> TaskResult:
    test = item.splits.test
    return TaskResult(task=item.task.meta, regime=item.regime, n_train_real=len(item.splits.train),
                      n_val=len(item.splits.val), n_test=len(test), n_test_patients=len(set(test.patient_ids.tolist())),
                      baseline=baseline.result, arms=arms, comparisons=comparisons)


def arm_predictions(arm: Arm, cache: Cache) -> ArmPredictions:
    """A planned arm's predictions, read from the cache."""
    return ArmPredictions(meta=generator_class(arm.generator).meta, revision=arm.revision, ratio=arm.ratio,
                          n_synthetic=arm.cells[0].n_synthetic,
                          seeds=[(cell.seed, cell.key, load_predictions(cache, cell)) for cell in arm.cells])


def score_run(plans: list[TaskPlan], cache: Cache, *, n_boot: int, profile: Profile = "protocol") -> ScoredRun:
    """Score a run's plans from the cache: every arm compared, the other arms also serving as references."""
    tasks = []
    for plan in plans:
        arms = [arm_predictions(arm, cache) for arm in plan.arms]
        tasks.append(TaskPredictions(plan.task, plan.regime, plan.splits, arm_predictions(plan.baseline, cache), arms,
                                     arms, plan.task.subgroups(plan.splits.test, plan.data_root)))
    return score_predictions(tasks, n_boot=n_boot, profile=profile)
