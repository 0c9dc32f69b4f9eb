"""What every segmentation task shares: transformed real masks as conditions, MONAI UNet, per-image Dice."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cxrbench.conditions import PROTOCOL_POLICY, Condition, ConditionPolicy, MaskCondition
from cxrbench.geometry import IDENTITY_AFFINE, apply_affine, random_affine
from cxrbench.samples import SampleSet, Splits
from cxrbench.stats import MeanOfCases
from cxrbench.task import DownstreamModel, Predictions, Task, TestScores

from .downstream.metrics import dice_per_image
from .downstream.postprocess import MIN_AREAS_64, THRESHOLDS, TIE_DECIMALS, choose_postprocess, min_areas
from .downstream.segmenter import (
    build_segmenter,
    fit_segmenter,
    predict_masks,
    predict_probabilities,
    segmenter_features,
)
from .downstream.training import Schedule


class SegmentationTask(Task):
    channels: ClassVar[tuple[int, ...]]
    schedule: ClassVar[Schedule]
    policy_settings: ClassVar[frozenset[str]] = frozenset({"mask_transforms"})

    def conditions(self, train: SampleSet, n: int, *, seed: int,
                   policy: ConditionPolicy = PROTOCOL_POLICY) -> list[Condition]:
        """Real training masks under a small random affine (without mask transforms: as they are, with the identity
        as their `transform`); empty masks stay empty (finding-free images). Single label conditions change nothing:
        a segmentation task has one label."""
        if train.masks is None:
            raise ValueError(f"task {self.meta.name}: training split has no masks")
        rng = np.random.default_rng([seed, 202])
        label = self.meta.labels[0]
        conditions: list[Condition] = []
        for row in rng.integers(0, len(train), size=n):
            params = random_affine(rng) if policy.mask_transforms else dict(IDENTITY_AFFINE)
            source = train.masks[row]
            moved = policy.mask_transforms and source.any()
            mask = apply_affine(source, params, nearest=True) if moved else source.copy()
            conditions.append(MaskCondition(labels={label: int(mask.any())}, mask=mask,
                                            source_id=str(train.sample_ids[row]), transform=params))
        return conditions

    def recipe(self) -> dict[str, Any]:
        return {"model": "monai.UNet", "channels": list(self.channels), "loss": "DiceLoss(batch=True)",
                "schedule": self.schedule.__dict__,
                "postprocess": {
                    "rule": "threshold (pixel predicted where sigmoid > threshold) and min_area (a mask with fewer "
                            "predicted pixels is emptied) chosen on val by the highest mean per-image Dice; ties "
                            f"(means rounded to {TIE_DECIMALS} decimals) to the lower threshold, then the smaller "
                            "area; applied to test",
                    "thresholds": list(THRESHOLDS), "min_areas_at_64px": list(MIN_AREAS_64),
                    "min_areas": list(min_areas(self.meta.resolution))}}

    def train_model(self, train: SampleSet, *, seed: int, device: str) -> DownstreamModel:
        if train.masks is None:
            raise ValueError(f"task {self.meta.name}: training data has no masks")
        return fit_segmenter(train.images, train.masks, channels=self.channels, schedule=self.schedule, seed=seed,
                             device=device)

    def untrained_model(self) -> DownstreamModel:
        return build_segmenter(self.channels)

    def predict(self, model: DownstreamModel, splits: Splits, *, device: str) -> Predictions:
        """Post-processed test masks and the post-processing (threshold, min_area) chosen on val.

        Probabilities are not stored (submissions carry the predictions): `postprocess` is [threshold, min_area]."""
        if splits.val.masks is None:
            raise ValueError(f"task {self.meta.name}: validation split has no masks")
        chosen = choose_postprocess(predict_probabilities(model, splits.val.images, device=device), splits.val.masks,
                                    self.meta.resolution)
        return {"test_mask": chosen.apply(predict_probabilities(model, splits.test.images, device=device)),
                "postprocess": chosen.as_array()}

    def embed(self, model: DownstreamModel, images: np.ndarray, *, device: str) -> np.ndarray:
        """The UNet's bottleneck activations, averaged over the image (`segmenter_features`)."""
        return segmenter_features(model, images, device=device)

    def condition_scores(self, model: DownstreamModel, images: np.ndarray, conditions: list[Condition], *,
                         device: str) -> np.ndarray:
        """Dice between the predicted mask and the requested one (both empty: 1).

        Masks at the fixed threshold 0.5 with no minimum area (not the val-chosen post-processing of `predict`):
        the proxy and the judge grade images one by one, with no val split of their own to choose on."""
        requested = np.stack([np.asarray(c.mask, dtype=bool) for c in conditions])
        return dice_per_image(predict_masks(model, images, device=device), requested)

    def case_metric(self, predictions: Predictions, splits: Splits) -> TestScores:
        """Mean per-image Dice; secondary: `dice_positive` (mean Dice over test images with a finding) and
        `fp_rate_empty` (share of finding-free test images with any predicted pixel), each omitted where it has
        no images."""
        pred, target = predictions["test_mask"], splits.test.masks
        dice = dice_per_image(pred, target)
        metric = MeanOfCases(dice)
        positive = target.reshape(len(target), -1).any(axis=1)
        secondary = {}
        if positive.any():
            secondary["dice_positive"] = float(dice[positive].mean())
        if not positive.all():
            secondary["fp_rate_empty"] = float(pred[~positive].reshape((~positive).sum(), -1).any(axis=1).mean())
        return TestScores(metric, {self.meta.labels[0]: metric.value()}, secondary)
