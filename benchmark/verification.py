"""Verification levels: how much of an entry's numbers CI has retrained itself, shown beside every number.

`validate` proves that an entry's numbers follow from its stored predictions, but predictions can be
written by hand: the embedded suite's test labels are public, so predictions pulled toward them (or a
baseline made worse) score whatever the submitter wants. `cxrbench verify` therefore retrains, with the
protocol's own code, every cell that CI can reach and requires the entry's predictions to match. What CI
can reach is decided from the entry's content alone, so the board derives the level itself and never
trusts a claim in the file:

- recomputed: every arm is retrained by CI: the real_only baseline, the reference arms, and the
  generator's own arm, either from its code (registered in this repository) or from the synthetic sets the
  entry carries (`carried`; tasks whose images may be published);
- spot-checked: the baseline and the reference arms are retrained (a forged baseline is refused), the
  generator's own arm is the submitter's (third-party code, which CI does not run);
- self-reported: the task's data is not public (the paper suite's credentialed datasets), so CI holds no
  copy and only the arithmetic is rechecked.

Only recomputed entries are ranked; the others are listed below them, marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .carried import sets_path
from .protocol import BASELINE
from .submission import TaskSubmission

if TYPE_CHECKING:
    from .schemas import GeneratorMeta
    from .task import Task

Level = Literal["recomputed", "spot-checked", "self-reported"]
LEVELS: tuple[Level, ...] = ("recomputed", "spot-checked", "self-reported")
"""Strongest first: the order the board lists entries in."""


def retrained_arms(submission: TaskSubmission, public_data: bool, carries_sets: bool) -> list[str]:
    """The arms (generator names, the baseline first) whose cells CI retrains for this task file."""
    if not public_data:
        return []
    arms = [BASELINE, *dict.fromkeys(a.generator for a in submission.result.arms)]
    return [name for name in arms if name != submission.generator or submission.verified or carries_sets]


def level(submission: TaskSubmission, public_data: bool, carries_sets: bool) -> Level:
    """The file's verification level (see the module docstring)."""
    return level_of(submission.verified, public_data, carries_sets)


def carries_sets(path: Path, submission: TaskSubmission) -> bool:
    """Whether the third-party task file at `path` carries its synthetic sets (they lie beside it)."""
    return not submission.verified and sets_path(path).is_file()


def file_level(path: Path, submission: TaskSubmission, public_data: bool) -> Level:
    """The level of the task file at `path` (what `verify`, `submit` and the board show)."""
    return level(submission, public_data, carries_sets(path, submission))


def level_of(verified: bool, public_data: bool, carries_sets: bool) -> Level:
    """The level of a task file whose generator is (`verified`) or is not in this repository: what `level` and
    `expected_level` share."""
    if not public_data:
        return "self-reported"
    return "recomputed" if verified or carries_sets else "spot-checked"


def expected_level(generator: GeneratorMeta, task: type[Task]) -> Level:
    """The level `cxrbench submit` gives an entry of `generator` on `task`, before there is one: submit carries a
    third-party arm's synthetic sets on every task whose images may be published."""
    return level_of(generator.verified, task.public_data, not generator.verified and task.redistributable)


MEANING: dict[Level, str] = {
    "recomputed": "CI retrains every arm of the entry, the generator's own included, and requires its predictions; "
                  "ranked on the board.",
    "spot-checked": "CI retrains real_only and the reference arms, but not the generator's own arm (third-party "
                    "code it does not run); listed below the ranked entries, unranked.",
    "self-reported": "the task's data is not public, so CI rechecks only the arithmetic; listed last, unranked.",
}
"""What a level means, in one sentence each (the run's, the report's and submit's output)."""

TO_RECOMPUTED: dict[Level, str] = {
    "recomputed": "",
    "spot-checked": "to be recomputed, add the generator's code to this repository by pull request (CI then runs "
                    "it), or submit it on a task whose images may be published (the embedded suite), where the "
                    "entry carries its synthetic images for CI to retrain from.",
    "self-reported": "no entry on this task can be recomputed: CI holds no copy of its data.",
}
"""How an entry of each level reaches recomputed."""


def run_levels(generators: list[GeneratorMeta], tasks: dict[str, list[str]]) -> dict[str, dict[Level, list[str]]]:
    """Per generator of a run (its stored meta), the level its entry would get, with the tasks at each level;
    `tasks` maps each generator to the tasks it has arms on."""
    from .registry import task_class

    levels: dict[str, dict[Level, list[str]]] = {}
    for meta in generators:
        for name in tasks.get(meta.name, []):
            levels.setdefault(meta.name, {}).setdefault(expected_level(meta, task_class(name)), []).append(name)
    return levels


def level_notes(levels: dict[str, dict[Level, list[str]]]) -> list[str]:
    """The lines a run's output shows under its tables: each generator's level, then what each level shown means."""
    if not levels:
        return []
    per_generator = []
    for generator, found in levels.items():
        if len(found) == 1:
            per_generator.append(f"{generator} {next(iter(found))}")
        else:
            per_generator.append(f"{generator} " + ", ".join(f"{level} on {', '.join(tasks)}"
                                                             for level, tasks in found.items()))
    shown = [level for level in LEVELS if any(level in found for found in levels.values())]
    return [f"verification if submitted: {'; '.join(per_generator)} (docs/verification.md)",
            *(f"{level}: {MEANING[level]} {TO_RECOMPUTED[level]}".rstrip() for level in shown)]
