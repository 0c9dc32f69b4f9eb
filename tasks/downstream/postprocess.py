"""Segmentation post-processing chosen on val: a probability threshold and a minimum predicted area.

A mask with fewer than `min_area` predicted pixels is emptied as a whole (SIIM-ACR's strong solutions):
a few stray pixels on a finding-free image would otherwise score Dice 0 for that image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import dice_per_image

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
"""Candidate probability thresholds (a pixel is predicted where its sigmoid output is above the threshold)."""
MIN_AREAS_64 = (0, 10, 20, 40, 80, 160)
"""Candidate minimum areas in pixels at 64 px; other resolutions scale them by (resolution / 64) ** 2."""
TIE_DECIMALS = 12
"""Mean val Dice is compared rounded to this many decimals, so float noise cannot break a true tie."""


@dataclass(frozen=True)
class PostProcess:
    threshold: float
    min_area: int

    def apply(self, prob: np.ndarray) -> np.ndarray:
        """Boolean masks (N, H, W): `prob > threshold`, emptied where fewer than `min_area` pixels are predicted."""
        masks = np.asarray(prob) > self.threshold
        masks[masks.sum(axis=(1, 2)) < self.min_area] = False
        return masks

    def as_array(self) -> np.ndarray:
        """[threshold, min_area] as stored with the predictions."""
        return np.array([self.threshold, self.min_area], dtype=np.float64)


def min_areas(resolution: int) -> tuple[int, ...]:
    """The candidate minimum areas at `resolution` px: the 64 px ones scaled by area, rounded to whole pixels."""
    scale = (resolution / 64) ** 2
    return tuple(int(round(area * scale)) for area in MIN_AREAS_64)


def grid(resolution: int) -> list[PostProcess]:
    """Every candidate in the order ties are settled in: lower threshold first, then smaller area."""
    return [PostProcess(t, a) for t in THRESHOLDS for a in min_areas(resolution)]


def choose_postprocess(val_prob: np.ndarray, val_target: np.ndarray, resolution: int) -> PostProcess:
    """The candidate with the highest mean per-image Dice on val (`dice_per_image`, the score's own Dice).

    Ties (means equal to TIE_DECIMALS decimals) go to the first candidate of `grid`: the lowest threshold,
    then the smallest minimum area."""
    candidates = grid(resolution)
    means = [round(float(dice_per_image(c.apply(val_prob), val_target).mean()), TIE_DECIMALS) for c in candidates]
    return candidates[int(np.argmax(means))]  # argmax: the first maximum
