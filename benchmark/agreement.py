"""Is the condition honoured? A judge trained on real data grades synthetic images against what was asked.

The judge is the task's own downstream recipe trained on the real training split (a seed no run
cell uses). It predicts the synthetic images, and the task's metric compares its predictions with
the requested labels (F1) or masks (Dice): the *matched* score. The same predictions against the
requests shuffled among the images give the *shuffled* score: what images that ignored their
condition would get at the same image quality. The judge's score on the real test split is the
ceiling. A generator honours its conditions when matched is clearly above shuffled.
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
from .samples import SampleSet, Splits
from .schemas import RunConfig
from .task import Predictions


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


def measure_agreement(task_name: str, generator: str, cache_root: Path, *, synthetic_seed: int = 0,
                      config: RunConfig | None = None, device: str = "cpu") -> AgreementResult:
    """Grade the cached (or newly made) synthetic set of `synthetic_seed` at the task's first default ratio."""
    config = config or RunConfig(tasks=[task_name], generators=[generator], device=device)
    cache = Cache(cache_root)
    plan = first_regime_plan(task_name, config, cache.root)
    arm, cell = first_ratio_cell(plan, generator, synthetic_seed)
    synthetic = synthetic_set(cell, cache, plan.splits)
    task, real = plan.task, plan.splits
    judge = task.train_model(real.train, seed=JUDGE_SEED, device=device)

    def graded(test: SampleSet) -> Splits:
        """The real train and val (val sets thresholds) with `test` in the test split's place."""
        return Splits(real.train, real.val, test)

    def score(predictions: Predictions, test: SampleSet) -> tuple[float, dict[str, float]]:
        scores = task.case_metric(predictions, graded(test))
        return scores.metric.value(), scores.per_label

    real_test, _ = score(task.predict(judge, graded(real.test), device=device), real.test)
    on_synthetic = task.predict(judge, graded(synthetic), device=device)  # the shuffled requests: same images
    matched, matched_per_label = score(on_synthetic, synthetic)
    shuffled, shuffled_per_label = score(on_synthetic, shuffled_requests(synthetic, synthetic_seed))
    return AgreementResult(task=task_name, generator=generator, revision=arm.revision, metric=task.meta.metric,
                           n_images=len(synthetic), synthetic_seed=synthetic_seed, judge_seed=JUDGE_SEED,
                           matched=matched, shuffled=shuffled, real_test=real_test,
                           matched_per_label=matched_per_label, shuffled_per_label=shuffled_per_label)
