"""Rejection sampling: draw again for the conditions whose image a scorer rejects, and count what it accepted.

A scorer is the proxy model or the reviewers' verdicts: one score in [0, 1] per image, accepted at
or above a threshold. Draw 0 uses the run's seed, so with nothing rejected the set is exactly the
plain generator's; a condition still rejected after the last draw keeps its best-scored image, so
the requested count is always delivered, and the notes say how many were delivered below threshold.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from cxrbench.conditions import Condition

Generate = Callable[[list[Condition], int], np.ndarray]
Score = Callable[[np.ndarray, list[Condition]], np.ndarray]


def draw_seed(seed: int, draw: int) -> int:
    """Draw 0 is the plain generator's seed; later draws use seeds no run seed reaches."""
    return seed if draw == 0 else seed + 1_000_003 * draw


def condition_group(condition: Condition) -> str:
    """Acceptance is reported per requested label vector (for masks: finding present or not)."""
    return json.dumps(condition.labels, sort_keys=True)


def rejection_sample(generate: Generate, score: Score, conditions: list[Condition], *, seed: int, threshold: float,
                     max_draws: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images (one per condition), their scores, and notes: draws, acceptance overall and per condition."""
    n = len(conditions)
    best_scores = np.full(n, -np.inf)
    best_images: np.ndarray | None = None
    draws = np.zeros(n, dtype=int)
    pending = list(range(n))
    for draw in range(max_draws):
        if not pending:
            break
        asked = [conditions[i] for i in pending]
        images = generate(asked, draw_seed(seed, draw))
        scores = score(images, asked)
        if best_images is None:
            best_images = np.zeros((n, *images.shape[1:]), images.dtype)
        for slot, i in enumerate(pending):
            draws[i] += 1
            if scores[slot] > best_scores[i]:
                best_scores[i], best_images[i] = scores[slot], images[slot]
        pending = [i for i in pending if best_scores[i] < threshold]
    accepted = best_scores >= threshold
    return best_images, best_scores, acceptance_notes(conditions, draws, accepted, threshold=threshold,
                                                      max_draws=max_draws)


def acceptance_notes(conditions: list[Condition], draws: np.ndarray, accepted: np.ndarray, *, threshold: float,
                     max_draws: int) -> dict:
    """Acceptance rate = accepted images / images drawn, overall and per condition group."""
    per_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for condition, n_draws, ok in zip(conditions, draws.tolist(), accepted.tolist()):
        per_group[condition_group(condition)][0] += n_draws
        per_group[condition_group(condition)][1] += int(ok)
    total = int(draws.sum())
    return {
        "threshold": threshold, "max_draws": max_draws, "requested": len(conditions), "drawn": total,
        "accepted": int(accepted.sum()), "delivered_below_threshold": int((~accepted).sum()),
        "acceptance_rate": float(accepted.sum() / total) if total else 0.0,
        "per_condition": {group: {"drawn": d, "accepted": a, "acceptance_rate": a / d if d else 0.0}
                          for group, (d, a) in sorted(per_group.items())},
    }
