"""The prompt a condition reads as, for every text-conditioned generator (the reference LDM, a pretrained pipeline).

A text condition brings its own prompt; a label condition becomes the template "chest x-ray with
cardiomegaly and pleural effusion", the paper's best-practice wording for single findings.
"""

from __future__ import annotations

from cxrbench.conditions import Condition, TextCondition


def finding_name(label: str) -> str:
    return label.replace("_", " ").lower()


def prompt_for(labels: dict[str, int]) -> str:
    """The prompt template for a label vector; single findings read as the paper's best-practice prompts."""
    present = [finding_name(name) for name, value in labels.items() if value]
    if not present:
        return "chest x-ray with no finding"
    listed = present[0] if len(present) == 1 else ", ".join(present[:-1]) + " and " + present[-1]
    return f"chest x-ray with {listed}"


def prompt_of(condition: Condition) -> str:
    return condition.prompt if isinstance(condition, TextCondition) else prompt_for(condition.labels)
