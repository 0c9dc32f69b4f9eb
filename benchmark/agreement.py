"""Is the condition honoured? A judge trained on real data grades synthetic images against what was asked.

The judge is the task's own downstream recipe trained on the real training split (a seed no run
cell uses), kept in the stage cache (`judge`) so that grading again, or grading another generator,
does not train it again. It predicts the synthetic images, and the task's metric compares its
predictions with the requested labels (F1) or masks (Dice): the *matched* score. The same
predictions against the requests shuffled among the images give the *shuffled* score: what images
that ignored their condition would get at the same image quality. The judge's score on the real test
split is the ceiling. A generator honours its conditions when matched is clearly above shuffled.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from .cache import Cache
from .cell import synthetic_set
from .plan import first_ratio_cell, first_regime_plan
from .protocol import JUDGE_SEED
from .real_trained import trained_on_real
from .samples import SampleSet, Splits
from .schemas import RunConfig
from .task import DownstreamModel, Predictions, Task


class AgreementResult(BaseModel):
    task: str
    generator: str
    revision: str
    metric: str
    n_images: int
    synthetic_seed: int
    judge_seed: int
    matched: float = Field(description="Judge's score on the synthetic images against the requested conditions.")
    shuffled: float = Field(description="The same against the requests shuffled among the images (chance level).")
    real_test: float = Field(description="Judge's score on the real test split (the ceiling).")
    matched_per_label: dict[str, float]
    shuffled_per_label: dict[str, float]


def shuffled_requests(synthetic: SampleSet, seed: int) -> SampleSet:
    """The same images with their requested labels and masks permuted among them."""
    order = np.random.default_rng([seed, 77]).permutation(len(synthetic))
    return replace(synthetic, labels=synthetic.labels[order],
                   masks=None if synthetic.masks is None else synthetic.masks[order])


def judge(task: Task, real: Splits, data_key: str, cache: Cache, *, device: str) -> DownstreamModel:
    """The task's recipe trained on `real.train` with the judge's seed; trained once per (data, recipe) and kept in
    the cache's `judge` stage as its weights."""
    return trained_on_real(task, real, data_key, cache, stage="judge", seed=JUDGE_SEED, device=device).model


class Grader:
    """The judge's scores of one set of images: against the requests they were made for, and against shuffles."""

    def __init__(self, task: Task, model: DownstreamModel, real: Splits, synthetic: SampleSet, *, device: str) -> None:
        self.task, self.real, self.synthetic = task, real, synthetic
        self._predictions: Predictions = task.predict(model, self._graded(synthetic), device=device)

    def _graded(self, test: SampleSet) -> Splits:
        """The real train and val (val sets thresholds) with `test` in the test split's place."""
        return Splits(self.real.train, self.real.val, test)

    def score(self, requests: SampleSet) -> tuple[float, dict[str, float]]:
        """The score of the images against `requests` (the synthetic set's own, or a shuffle of them)."""
        scores = self.task.case_metric(self._predictions, self._graded(requests))
        return scores.metric.value(), scores.per_label

    def matched(self) -> tuple[float, dict[str, float]]:
        return self.score(self.synthetic)

    def shuffled(self, seed: int) -> tuple[float, dict[str, float]]:
        return self.score(shuffled_requests(self.synthetic, seed))


def real_test_score(task: Task, model: DownstreamModel, real: Splits, *, device: str) -> float:
    """The judge's score on the real test split: the ceiling of a matched score."""
    return task.case_metric(task.predict(model, real, device=device), real).metric.value()


def measure_agreement(task_name: str, generator: str, cache_root: Path, *, synthetic_seed: int = 0,
                      config: RunConfig | None = None, device: str = "cpu") -> AgreementResult:
    """Grade the cached (or newly made) synthetic set of `synthetic_seed` at the task's first default ratio."""
    config = config or RunConfig(tasks=[task_name], generators=[generator], device=device)
    cache = Cache(cache_root)
    plan = first_regime_plan(task_name, config, cache.root)
    arm, cell = first_ratio_cell(plan, generator, synthetic_seed)
    synthetic = synthetic_set(cell, cache, plan.splits)
    task, real = plan.task, plan.splits
    model = judge(task, real, cell.data_key, cache, device=device)
    grader = Grader(task, model, real, synthetic, device=device)
    matched, matched_per_label = grader.matched()
    shuffled, shuffled_per_label = grader.shuffled(synthetic_seed)
    return AgreementResult(task=task_name, generator=generator, revision=arm.revision, metric=task.meta.metric,
                           n_images=len(synthetic), synthetic_seed=synthetic_seed, judge_seed=JUDGE_SEED,
                           matched=matched, shuffled=shuffled, real_test=real_test_score(task, model, real,
                                                                                         device=device),
                           matched_per_label=matched_per_label, shuffled_per_label=shuffled_per_label)
