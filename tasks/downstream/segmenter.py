"""Segmentation recipe: MONAI's UNet with a batch Dice loss; its sigmoid probabilities, or masks at 0.5."""

from __future__ import annotations

import numpy as np

from cxrbench.determinism import deterministic_cell

from .training import Schedule, fit, predict


def build_segmenter(channels: tuple[int, ...]):
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1)


def fit_segmenter(images: np.ndarray, masks: np.ndarray, *, channels: tuple[int, ...], schedule: Schedule, seed: int,
                  device: str):
    """The recipe's segmenter trained on (images, masks): initialised and shuffled from `seed`."""
    from monai.losses import DiceLoss

    with deterministic_cell(seed):
        net = build_segmenter(channels)
        loss = DiceLoss(sigmoid=True, batch=True)  # batch Dice: cross-entropy alone pulls small sets to all-empty
        fit(net, images[:, None], masks[:, None].astype(np.float32), loss, schedule, seed=seed, device=device)
    return net


def predict_probabilities(net, images: np.ndarray, *, device: str) -> np.ndarray:
    """The segmenter's sigmoid output (N, H, W), float32."""
    return predict(net, images[:, None], device=device)[:, 0]


def predict_masks(net, images: np.ndarray, *, device: str) -> np.ndarray:
    """Boolean masks (N, H, W): the segmenter's sigmoid output above 0.5 (no minimum area)."""
    return predict_probabilities(net, images, device=device) > 0.5
