"""What every segmentation task shares: transformed real masks as conditions, MONAI UNet, per-image Dice."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cxrbench.conditions import Condition, MaskCondition
from cxrbench.geometry import apply_affine, random_affine
from cxrbench.samples import SampleSet, Splits
from cxrbench.stats import CaseMetric, MeanOfCases
from cxrbench.task import DownstreamModel, Predictions, Task

from .downstream.metrics import dice_per_image
from .downstream.segmenter import build_segmenter, fit_segmenter, predict_masks
from .downstream.training import Schedule


class SegmentationTask(Task):
    channels: ClassVar[tuple[int, ...]]
    schedule: ClassVar[Schedule]

    def conditions(self, train: SampleSet, n: int, *, seed: int) -> list[Condition]:
        """Real training masks under a small random affine; empty masks stay empty (finding-free images)."""
        if train.masks is None:
            raise ValueError(f"task {self.meta.name}: training split has no masks")
        rng = np.random.default_rng([seed, 202])
        label = self.meta.labels[0]
        conditions: list[Condition] = []
        for row in rng.integers(0, len(train), size=n):
            params = random_affine(rng)
            source = train.masks[row]
            mask = apply_affine(source, params, nearest=True) if source.any() else source.copy()
            conditions.append(MaskCondition(labels={label: int(mask.any())}, mask=mask,
                                            source_id=str(train.sample_ids[row]), transform=params))
        return conditions

    def recipe(self) -> dict[str, Any]:
        return {"model": "monai.UNet", "channels": list(self.channels), "loss": "DiceLoss(batch=True)",
                "schedule": self.schedule.__dict__, "threshold": 0.5}

    def train_model(self, train: SampleSet, *, seed: int, device: str) -> DownstreamModel:
        if train.masks is None:
            raise ValueError(f"task {self.meta.name}: training data has no masks")
        return fit_segmenter(train.images, train.masks, channels=self.channels, schedule=self.schedule, seed=seed,
                             device=device)

    def untrained_model(self) -> DownstreamModel:
        return build_segmenter(self.channels)

    def predict(self, model: DownstreamModel, splits: Splits, *, device: str) -> Predictions:
        """Test masks only: the threshold is fixed, so val has nothing to choose."""
        return {"test_mask": predict_masks(model, splits.test.images, device=device)}

    def condition_scores(self, model: DownstreamModel, images: np.ndarray, conditions: list[Condition], *,
                         device: str) -> np.ndarray:
        """Dice between the predicted mask and the requested one (both empty: 1)."""
        requested = np.stack([np.asarray(c.mask, dtype=bool) for c in conditions])
        return dice_per_image(predict_masks(model, images, device=device), requested)

    def case_metric(self, predictions: Predictions, splits: Splits) -> tuple[CaseMetric, dict[str, float]]:
        dice = dice_per_image(predictions["test_mask"], splits.test.masks)
        metric = MeanOfCases(dice)
        return metric, {self.meta.labels[0]: metric.value()}
