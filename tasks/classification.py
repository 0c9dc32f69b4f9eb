"""What every classification task shares: label conditions, the classifier recipe, macro F1 on test."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cxrbench.conditions import Condition, LabelCondition
from cxrbench.samples import SampleSet, Splits
from cxrbench.stats import CaseMetric, MacroF1
from cxrbench.task import DownstreamModel, Predictions, Task

from .downstream.classifier import ClassifierName, build_classifier, fit_classifier
from .downstream.metrics import val_thresholds
from .downstream.training import Schedule, predict


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

    def train_model(self, train: SampleSet, *, seed: int, device: str) -> DownstreamModel:
        return fit_classifier(train.images, train.labels, model=self.model, schedule=self.schedule, seed=seed,
                              device=device)

    def untrained_model(self) -> DownstreamModel:
        return build_classifier(self.model, len(self.meta.labels))

    def predict(self, model: DownstreamModel, splits: Splits, *, device: str) -> Predictions:
        """Probabilities per label: val's choose the thresholds, test's are scored."""
        return {f"{name}_prob": predict(model, part.images[:, None], device=device).astype(np.float32)
                for name, part in (("val", splits.val), ("test", splits.test))}

    def condition_scores(self, model: DownstreamModel, images: np.ndarray, conditions: list[Condition], *,
                         device: str) -> np.ndarray:
        """The mean probability of the requested value of each label (a label the condition omits: absent)."""
        probabilities = predict(model, images[:, None], device=device)
        requested = np.array([[c.labels.get(name, 0) for name in self.meta.labels] for c in conditions], dtype=bool)
        return np.where(requested, probabilities, 1 - probabilities).mean(axis=1).astype(np.float64)

    def case_metric(self, predictions: Predictions, splits: Splits) -> tuple[CaseMetric, dict[str, float]]:
        thresholds = val_thresholds(predictions["val_prob"], splits.val.labels)
        metric = MacroF1(predictions["test_prob"] >= thresholds, splits.test.labels.astype(bool))
        return metric, dict(zip(self.meta.labels, map(float, metric.per_label())))
