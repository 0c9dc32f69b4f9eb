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

from typing import Literal

from .protocol import BASELINE
from .submission import TaskSubmission

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
    arms = retrained_arms(submission, public_data, carries_sets)
    if not arms:
        return "self-reported"
    return "recomputed" if submission.generator in arms else "spot-checked"
