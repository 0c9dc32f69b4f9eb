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

if TYPE_CHECKING:
    from .schemas import Conditioning, DatasetRef, GeneratorMeta, TaskMeta

PROTOCOL_VERSION = "1"
"""Bumped whenever a rule below, the statistics or the correction family change."""
RESULT_SCHEMA_VERSION = "1"
"""The `RunResult` JSON's schema."""
SUBMISSION_SCHEMA_VERSION = "2"
"""The schema of a submission's `generator.yaml` and task files (2: no fidelity/privacy fields, which version 1
declared but cxrbench never wrote)."""

STAGE_VERSIONS = {"data": "1", "fit": "1", "synthetic": "1", "downstream": "1"}
"""Each cache stage's version: part of every key of that stage, so a bump recomputes exactly that stage."""

BASELINE = "real_only"
"""The arm without synthetic images, trained in every run; every other arm is compared with it."""

FIT_SEED = 0
"""Generators are fitted once per run setting; run seeds vary the synthetic set and the downstream model."""
REVIEWED_SEED = 0
"""Reviewers judge the synthetic set of this seed at the task's first default ratio."""
JUDGE_SEED = 9_001
"""The agreement judge's training seed: far from the run seeds (0..n), so it is never a compared model."""
PROXY_SEED = 7_001
"""The proxy's training seed: neither the judge's nor a run seed, so a filter is never graded by itself."""


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


@dataclass(frozen=True)
class ArmRole:
    """What the comparison rule needs to know of an arm."""

    generator: str
    role: str
    """The generator's `GeneratorMeta.role`: baseline, control or generator."""
    ratio: float
    variant_of: str | None = None


def references(arm: ArmRole, others: Sequence[ArmRole]) -> list[ArmRole]:
    """The arms (besides real_only, which every arm is compared with) that `arm` is compared with.

    A generator must also clear every baseline-role arm (e.g. classic_aug) at its ratio, the bar a
    generator must clear to be worth its compute, and the generator it is a variant of (e.g.
    ldm_mask for ldm_mask_proxy) when that arm is present. Controls and baselines are compared with
    real_only only.
    """
    if arm.role != "generator":
        return []
    return [other for other in others
            if other.ratio == arm.ratio and other.generator != arm.generator
            and (other.role == "baseline" or other.generator == arm.variant_of)]


def entry_references(generator: GeneratorMeta, run_generators: Sequence[GeneratorMeta]) -> list[str]:
    """The reference generators a submission entry of `generator` carries beside it: the run's baselines."""
    if generator.role != "generator":
        return []
    return [meta.name for meta in run_generators if meta.role == "baseline" and meta.name != BASELINE]


def task_data_names(task: TaskMeta, folder: str | None) -> set[str]:
    """Names a declaration may give a task's data: the task, its suite, and a real task's dataset folder.

    Real tasks re-split the published folders by patient, so any split of the dataset other than
    cxrbench's own train split can hold the task's val or test patients.
    """
    return {task.name, task.suite} | ({folder} if folder else set())


def leaked_training_data(trained_on: Sequence[DatasetRef], task: TaskMeta, folder: str | None) -> list[int]:
    """Indices of the declared training data that touch the task's data beyond its train split (a test-set leak)."""
    names = task_data_names(task, folder)
    return [i for i, ref in enumerate(trained_on) if ref.dataset.lower() in names and ref.split.lower() != "train"]
