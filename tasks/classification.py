"""What every classification task shares: label conditions, the classifier recipe, macro F1 on test."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cxrbench.conditions import Condition, LabelCondition
from cxrbench.samples import SampleSet, Splits
from cxrbench.stats import CaseMetric, MacroF1
from cxrbench.task import Predictions, Task

from .downstream.classifier import ClassifierName, train_classifier
from .downstream.metrics import val_thresholds
from .downstream.training import Schedule


class ClassificationTask(Task):
    model: ClassVar[ClassifierName]
    schedule: ClassVar[Schedule]

    def conditions(self, train: SampleSet, n: int, *, seed: int) -> list[Condition]:
        """Label vectors resampled from the real training rows, so label co-occurrence stays real."""
        rng = np.random.default_rng([seed, 101])
        rows = rng.integers(0, len(train), size=n)
        names = self.meta.labels
        return [LabelCondition(labels={k: int(v) for k, v in zip(names, train.labels[r])}) for r in rows]

    def recipe(self) -> dict[str, Any]:
        return {"model": self.model, "schedule": self.schedule.__dict__, "threshold": "max F1 on val, per label"}

    def train_and_predict(self, train: SampleSet, splits: Splits, *, seed: int, device: str) -> Predictions:
        probs = train_classifier(train.images, train.labels, {"val": splits.val.images, "test": splits.test.images},
                                 model=self.model, schedule=self.schedule, seed=seed, device=device)
        return {"val_prob": probs["val"].astype(np.float32), "test_prob": probs["test"].astype(np.float32)}

    def case_metric(self, predictions: Predictions, splits: Splits) -> tuple[CaseMetric, dict[str, float]]:
        thresholds = val_thresholds(predictions["val_prob"], splits.val.labels)
        metric = MacroF1(predictions["test_prob"] >= thresholds, splits.test.labels.astype(bool))
        return metric, dict(zip(self.meta.labels, map(float, metric.per_label())))
