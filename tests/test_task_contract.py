"""The Task contract's model methods, with stand-in models whose answers are known (nothing trains here)."""

from __future__ import annotations

import numpy as np
import torch

from cxrbench.conditions import LabelCondition, MaskCondition
from cxrbench.registry import get_task


class FixedLogits(torch.nn.Module):
    """A classifier that gives every image the same logits."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


class Threshold(torch.nn.Module):
    """A segmenter that finds exactly the pixels brighter than 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100 * (x - 0.5)


def test_classification_scores_the_mean_probability_of_each_requested_value():
    task = get_task("phantom_cls")
    first, *others = task.meta.labels
    model = FixedLogits([50.0] + [-50.0] * len(others))  # sure: the first finding, none of the others
    exact = {first: 1, **{name: 0 for name in others}}
    conditions = [LabelCondition(labels=exact), LabelCondition(labels={k: 1 - v for k, v in exact.items()}),
                  LabelCondition(labels={first: 1, others[0]: 1})]  # an omitted label is asked absent
    scores = task.condition_scores(model, np.zeros((3, 64, 64), np.float32), conditions, device="cpu")
    np.testing.assert_allclose(scores, [1.0, 0.0, 1 - 1 / len(task.meta.labels)], atol=1e-9)


def test_segmentation_scores_the_dice_with_the_requested_mask():
    task = get_task("phantom_seg")
    square = np.zeros((64, 64), bool)
    square[10:30, 10:30] = True
    images = np.stack([square, square, np.zeros_like(square)]).astype(np.float32)
    asked = [square, np.roll(square, 32, axis=1), np.zeros_like(square)]  # the same, disjoint, both empty
    conditions = [MaskCondition(labels={"pneumothorax": int(m.any())}, mask=m, source_id="s") for m in asked]
    scores = task.condition_scores(Threshold(), images, conditions, device="cpu")
    np.testing.assert_allclose(scores, [1.0, 0.0, 1.0])


def test_predictions_are_what_the_case_metric_reads():
    task = get_task("phantom_seg")
    splits = task.load(None, train_size=16)
    predictions = task.predict(Threshold(), splits, device="cpu")
    assert predictions["test_mask"].shape == splits.test.masks.shape
    assert predictions["test_mask"].dtype == bool and set(predictions) == {"test_mask", "postprocess"}
    scores = task.case_metric(predictions, splits)
    assert 0 <= scores.metric.value() <= 1 and list(scores.per_label) == task.meta.labels
    assert set(scores.secondary) == {"dice_positive", "fp_rate_empty"}
