"""Segmentation recipe: MONAI's UNet with a batch Dice loss, masks thresholded at 0.5."""

from __future__ import annotations

import numpy as np

from .training import Schedule, deterministic_cell, fit, predict


def build_segmenter(channels: tuple[int, ...]):
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1)


def train_segmenter(images: np.ndarray, masks: np.ndarray, predict_on: dict[str, np.ndarray], *,
                    channels: tuple[int, ...], schedule: Schedule, seed: int, device: str) -> dict[str, np.ndarray]:
    """Train on (images, masks); return boolean predicted masks for each array in `predict_on`."""
    from monai.losses import DiceLoss

    with deterministic_cell(seed):
        net = build_segmenter(channels)
        loss = DiceLoss(sigmoid=True, batch=True)  # batch Dice: cross-entropy alone pulls small sets to all-empty
        fit(net, images[:, None], masks[:, None].astype(np.float32), loss, schedule, seed=seed, device=device)
        return {name: predict(net, x[:, None], device=device)[:, 0] > 0.5 for name, x in predict_on.items()}
