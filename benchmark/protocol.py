"""The protocol's rules, in one place: what every part of cxrbench (plan, scoring, submit, validate,
the generators, the leaderboard) asks when it needs to know what the benchmark prescribes.

Which conditions a task asks for, how many synthetic images an arm gets, which arms an arm is
compared with, which seeds the protocol reserves, and the versions that stamp every file. A change
here changes the benchmark's numbers or files: bump the matching version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .schemas import Conditioning, DatasetRef, GeneratorMeta, Profile, TaskMeta
    from .task import Task

PROTOCOL_VERSION = "2"
"""Bumped whenever a rule below, the statistics or the correction family change (2: regimes, the primary analysis
and its verdict, the fixed family, real_extra)."""
SMOKE_PROFILE_VERSION = "1"
"""Bumped whenever a task's smoke settings (`Task.smoke`) or the smoke profile's rules change; a smoke result records
it, and `cxrbench check` calls results of two versions not comparable."""
RESULT_SCHEMA_VERSION = "2"
"""The `RunResult` JSON's schema."""
SUBMISSION_SCHEMA_VERSION = "3"
"""The schema of a submission's `generator.yaml` and task files (2: no fidelity/privacy fields, which version 1
declared but cxrbench never wrote; 3: one task file per task and regime, holding a protocol 2 result)."""

STAGE_VERSIONS = {"data": "1", "fit": "1", "synthetic": "1", "downstream": "2", "judge": "1",
                  "encoder": "1", "features": "1", "quality": "1", "verifier": "1"}
"""Each cache stage's version: part of every key of that stage, so a bump recomputes exactly that stage."""

BASELINE = "real_only"
"""The arm without synthetic images, trained in every run; every other arm is compared with it."""
POOL_CONTROL = "real_extra"
"""The control that adds real images from the regime's pool: the denominator of every arm's transfer efficiency."""
REFERENCE_BASELINES = ("classic_aug",)
"""The baselines every generator must also be compared with: the bar a generator must clear to be worth its compute."""
ALPHA = 0.05
"""The family-wise error rate of each entry's verdicts (two-sided: α/2 per direction)."""
SUBGROUP_MIN_PATIENTS = 10
"""A patient group with fewer test patients gets no subgroup Δ (its interval would rest on a handful of patients'
bootstrap), only the reason."""
AGE_CUT = 60
"""Age bands of the subgroup analysis: under 60 and 60 or over, in years (docs/tasks-and-data.md says why)."""
PREDICTION_TOLERANCE = 0.0
"""How far an entry's prediction may be from CI's retraining of its cell (`cxrbench verify`): the largest
difference of a probability, or the share of differing mask pixels. Zero: with the CPU kernels pinned
(`kernels.py`), retraining gave the same bits under every instruction set tried (docs/verification.md)."""

FIT_SEED = 0
"""Generators are fitted once per run setting; run seeds vary the synthetic set and the downstream model."""
REVIEWED_SEED = 0
"""Reviewers judge the synthetic set of this seed at the task's first default ratio."""
JUDGE_SEED = 9_001
"""The agreement judge's training seed: far from the run seeds (0..n), so it is never a compared model."""
PROXY_SEED = 7_001
"""The proxy's training seed: neither the judge's nor a run seed, so a filter is never graded by itself."""
FEATURE_SEED = 8_001
"""The in-domain feature encoder's training seed (`feature_extractors.InDomainEncoder`): neither a run seed, the
judge's nor the proxy's, so the features that measure fidelity never come from a model the run compares, grades or
filters with."""
REID_SEED = 6_001
"""The re-identification verifier's training seed (and its pairs'): neither a run seed, the judge's nor the proxy's."""


def condition_kind(task: TaskMeta) -> Conditioning:
    """What a task asks generators for: label conditions for classification, masks for segmentation."""
    return "label" if task.kind == "classification" else "mask"


def incompatibility(generator: GeneratorMeta, task: TaskMeta) -> str | None:
    """Why the generator cannot serve the task (wrong suite, or not the conditions the task asks for), or None."""
    if generator.suites is not None and task.suite not in generator.suites:
        return f"generator {generator.name} serves suites {generator.suites}, not {task.suite!r} (task {task.name})"
    needed = condition_kind(task)
    if needed not in generator.conditioning:
        return f"generator {generator.name} cannot take {needed} conditions, which task {task.name} asks for"
    return None


def synthetic_count(ratio: float, n_real: int) -> int:
    """Synthetic images of an arm at `ratio` synthetic per real training image (at least one)."""
    return max(1, int(round(ratio * n_real)))


def required_references(generator: GeneratorMeta) -> list[str]:
    """The arms an arm of `generator` is compared with: real_only always; a generator also with every reference
    baseline (classic_aug) at its settings and with the generator it is a variant of (ldm_mask for ldm_mask_proxy).
    Controls and baselines are compared with real_only only."""
    if generator.role != "generator":
        return [BASELINE]
    return [BASELINE, *REFERENCE_BASELINES, *([generator.variant_of] if generator.variant_of else [])]


def serves_regime(generator: GeneratorMeta, train_size: int | None) -> bool:
    """Whether the generator can run in a regime: one that draws real images from outside the regime's training
    subset (real_extra) has nothing to draw in a regime that uses the whole training split."""
    return not (generator.needs_pool and train_size is None)


def profiled_meta(task: Task | type[Task], profile: Profile) -> TaskMeta:
    """The task as a run of `profile` covers it: the protocol's meta, or under the smoke profile the same meta with
    its regimes, seeds and default ratios narrowed to the task's smoke settings. The plan takes its regimes, seeds
    and ratios from it and the scoring its family, so a smoke result is a complete entry of the smoke profile."""
    meta = task.meta
    if profile == "protocol":
        return meta
    smoke = task.smoke
    if smoke is None:
        raise ConfigError(f"task {meta.name} has no smoke profile (its class sets no `smoke`); run it under the "
                          f"protocol or leave it out")
    unknown = [name for name in smoke.regimes if name not in meta.regimes]
    if unknown:
        raise ConfigError(f"task {meta.name}'s smoke profile names regime(s) {', '.join(unknown)}, which it lacks "
                          f"(its regimes: {', '.join(meta.regimes)})")
    return meta.model_copy(update={"regimes": {name: meta.regimes[name] for name in smoke.regimes},
                                   "default_seeds": smoke.seeds,
                                   "default_ratios": smoke.ratios or meta.default_ratios})


def run_seeds(meta: TaskMeta, seeds: int | None, first_seed: int) -> list[int]:
    """The seeds of every arm of a run on the task: `seeds` (default: the task's) from `first_seed` on."""
    return list(range(first_seed, first_seed + (seeds or meta.default_seeds)))


def run_regimes(task: TaskMeta, regimes: Sequence[str] | None, train_size: int | None) -> dict[str, int | None]:
    """The regimes a run covers on `task`: its own (all, or those named), or one custom size named `n<size>`."""
    if train_size is not None:
        return {f"n{train_size}": train_size}
    if regimes is None:
        return dict(task.regimes)
    unknown = [name for name in regimes if name not in task.regimes]
    if unknown:
        raise ConfigError(f"task {task.name} has no regime {', '.join(map(repr, unknown))} "
                         f"(its regimes: {', '.join(task.regimes)})")
    return {name: task.regimes[name] for name in regimes}


@dataclass(frozen=True, order=True)
class FamilyMember:
    """One comparison an entry reports: its arm (at `ratio`) against `reference`, on a task in a regime."""

    task: str
    regime: str
    ratio: float
    reference: str

    def __str__(self) -> str:
        return f"{self.task}/{self.regime} ratio {self.ratio:g} vs {self.reference}"


def family(generator: GeneratorMeta, tasks: Sequence[TaskMeta]) -> list[FamilyMember]:
    """The comparisons an entry of `generator` on these tasks (a suite's) must contain: every task it serves, every
    regime it serves, every default ratio, against every required reference. Holm and Bonferroni correct over
    exactly this family (plus any extra comparison a run adds, e.g. another ratio), whatever a run happened to
    contain: a missing member counts as not rejected (p = 1), and the entry is incomplete."""
    references = required_references(generator)
    return [FamilyMember(task.name, regime, ratio, reference)
            for task in tasks if incompatibility(generator, task) is None
            for regime, size in task.regimes.items() if serves_regime(generator, size)
            for ratio in task.default_ratios for reference in references]


def entry_references(generator: GeneratorMeta) -> list[str]:
    """The reference arms a submission entry of `generator` carries beside its own and real_only's."""
    return [name for name in required_references(generator) if name != BASELINE]


def task_data_names(task: TaskMeta, folder: str | None) -> set[str]:
    """Names a declaration may give a task's data: the task, its suite, and a real task's dataset folder.

    Real tasks re-split the published folders by patient, so any split of the dataset other than
    cxrbench's own train split can hold the task's val or test patients.
    """
    return {task.name, task.suite} | ({folder} if folder else set())


LEARNABLE_SPLITS = ("train", "pretraining")
"""The splits of a task's data a generator may declare it learnt from: the train split, and the task's pretraining
pool (`Task.pretraining_pool`, e.g. `DatasetRef(dataset="phantom_seg", split="pretraining")`); both are disjoint
from val and test by patient. Any other split of the task's data (val, test, all, ...) can hold test patients."""


def leaked_training_data(trained_on: Sequence[DatasetRef], task: TaskMeta, folder: str | None) -> list[int]:
    """Indices of the declared training data that touch the task's data beyond its train split and pretraining pool
    (a test-set leak)."""
    names = task_data_names(task, folder)
    return [i for i, ref in enumerate(trained_on)
            if ref.dataset.lower() in names and ref.split.lower() not in LEARNABLE_SPLITS]
