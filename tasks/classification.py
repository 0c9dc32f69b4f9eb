"""What every classification task shares: label conditions, the classifier recipe, macro F1 on test.

Macro F1 averages the F1 of each label's positive class over the labels. A single-label task (e.g.
pneumonia vs normal) has two classes, the label and its absence, and scores the macro F1 of both:
the F1 of its positive class alone rewards predicting the majority class where most images are positive.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cxrbench.conditions import PROTOCOL_POLICY, Condition, ConditionPolicy, LabelCondition
from cxrbench.samples import SampleSet, Splits
from cxrbench.stats import MacroF1
from cxrbench.task import DownstreamModel, Predictions, Task, TestScores

from .downstream.classifier import ClassifierName, build_classifier, classifier_features, fit_classifier
from .downstream.metrics import val_thresholds
from .downstream.training import Schedule, predict


class ClassificationTask(Task):
    model: ClassVar[ClassifierName]
    schedule: ClassVar[Schedule]
    policy_settings: ClassVar[frozenset[str]] = frozenset({"label_conditions"})

    def conditions(self, train: SampleSet, n: int, *, seed: int,
                   policy: ConditionPolicy = PROTOCOL_POLICY) -> list[Condition]:
        """Label vectors resampled from the real training rows, so label co-occurrence stays real; under single label
        conditions the same rows, each keeping one of its positive findings at random (none: no finding)."""
        rng = np.random.default_rng([seed, 101])
        labels = train.labels[rng.integers(0, len(train), size=n)]
        if policy.label_conditions == "single":
            labels = _one_finding_each(labels, rng)
        names = self.meta.labels
        return [LabelCondition(labels={k: int(v) for k, v in zip(names, row)}) for row in labels]

    def recipe(self) -> dict[str, Any]:
        return {"model": self.model, "schedule": self.schedule.__dict__,
                "batch_norm": "running statistics recomputed on the real training images after training",
                "threshold": "per label, the val probability t maximising F1 = 2TP / (2TP + FP + FN) of prob >= t on "
                             "val, compared exactly; ties to the lowest t",
                "metric": self.metric_text()}

    def metric_text(self) -> str:
        if len(self.meta.labels) == 1:
            return (f"macro F1 of the two classes {self.class_names()[0]!r} and {self.class_names()[1]!r} "
                    "(each class's F1, averaged)")
        return "macro F1: the mean over labels of each label's positive-class F1"

    def class_names(self) -> list[str]:
        """The columns the score averages: the labels, or for a single label the label and its absence."""
        labels = list(self.meta.labels)
        return labels + [f"no {labels[0]}"] if len(labels) == 1 else labels

    def train_model(self, train: SampleSet, *, seed: int, device: str) -> DownstreamModel:
        return fit_classifier(train.images, train.labels, model=self.model, schedule=self.schedule, seed=seed,
                              device=device, real_rows=train.real_rows())

    def untrained_model(self) -> DownstreamModel:
        return build_classifier(self.model, len(self.meta.labels))

    def predict(self, model: DownstreamModel, splits: Splits, *, device: str) -> Predictions:
        """Probabilities per label: val's choose the thresholds, test's are scored."""
        return {f"{name}_prob": predict(model, part.images[:, None], device=device).astype(np.float32)
                for name, part in (("val", splits.val), ("test", splits.test))}

    def embed(self, model: DownstreamModel, images: np.ndarray, *, device: str) -> np.ndarray:
        """The vector the classifier's linear head reads (`classifier_features`)."""
        return classifier_features(model, images, model=self.model, device=device)

    def condition_scores(self, model: DownstreamModel, images: np.ndarray, conditions: list[Condition], *,
                         device: str) -> np.ndarray:
        """The mean probability of the requested value of each label (a label the condition omits: absent)."""
        probabilities = predict(model, images[:, None], device=device)
        requested = np.array([[c.labels.get(name, 0) for name in self.meta.labels] for c in conditions], dtype=bool)
        return np.where(requested, probabilities, 1 - probabilities).mean(axis=1).astype(np.float64)

    def case_metric(self, predictions: Predictions, splits: Splits) -> TestScores:
        """Macro F1 at the val thresholds (see `metric_text`), F1 per class; secondary: `auroc` (sklearn's
        roc_auc_score of the test probabilities, macro over the labels with both classes on test; omitted if none)."""
        thresholds = val_thresholds(predictions["val_prob"], splits.val.labels)
        pred, target = predictions["test_prob"] >= thresholds, splits.test.labels.astype(bool)
        if pred.shape[1] == 1:
            pred, target = np.concatenate([pred, ~pred], axis=1), np.concatenate([target, ~target], axis=1)
        metric = MacroF1(pred, target)
        per_label = dict(zip(self.class_names(), map(float, metric.per_label()), strict=True))
        return TestScores(metric, per_label, _auroc(predictions["test_prob"], splits.test.labels))


def _one_finding_each(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`labels` with every row of several positives reduced to one of them, drawn uniformly by `rng`."""
    single = np.zeros_like(labels)
    for row, findings in enumerate(labels):
        positives = np.flatnonzero(findings)
        if positives.size:
            single[row, rng.choice(positives)] = 1
    return single


def _auroc(prob: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """{"auroc": mean AUROC over the labels with both classes in `target`}, or {} where no label has both."""
    from sklearn.metrics import roc_auc_score

    both = [k for k in range(target.shape[1]) if 0 < target[:, k].sum() < len(target)]
    if not both:
        return {}
    return {"auroc": float(np.mean([roc_auc_score(target[:, k], prob[:, k]) for k in both]))}
