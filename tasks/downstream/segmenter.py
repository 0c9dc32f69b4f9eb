"""Segmentation recipe: MONAI's UNet with a batch Dice loss; its sigmoid probabilities, or masks at 0.5."""

from __future__ import annotations

import numpy as np

from cxrbench.determinism import deterministic_cell

from .training import Schedule, fit, predict, run_batches


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
        fit(net, images[:, None], masks[:, None], loss, schedule, seed=seed, device=device)
    return net


def predict_probabilities(net, images: np.ndarray, *, device: str) -> np.ndarray:
    """The segmenter's sigmoid output (N, H, W), float32."""
    return predict(net, images[:, None], device=device)[:, 0]


def predict_masks(net, images: np.ndarray, *, device: str) -> np.ndarray:
    """Boolean masks (N, H, W): the segmenter's sigmoid output above 0.5 (no minimum area)."""
    return predict_probabilities(net, images, device=device) > 0.5


def bottleneck(net):
    """The UNet's deepest layer: the submodule of the innermost skip connection (MONAI nests one per level, the
    bottom layer inside the last), found by structure rather than by a path that a MONAI release could move."""
    from monai.networks.layers import SkipConnection

    skips = [m for m in net.modules() if isinstance(m, SkipConnection)]
    innermost = [s.submodule for s in skips if not any(isinstance(m, SkipConnection) for m in s.submodule.modules())]
    if len(innermost) != 1:
        raise TypeError(f"expected a MONAI UNet with one innermost skip connection, found {len(innermost)} in "
                        f"{type(net).__name__}")
    return innermost[0]


def segmenter_features(net, images: np.ndarray, *, device: str) -> np.ndarray:
    """The global average of the bottleneck's activations (N, channels[-1]), taken by a forward hook: the most
    abstract representation of the image the UNet forms, before the decoder mixes in the skip connections."""
    layer = bottleneck(net)

    def pooled_bottleneck(unet, batch):
        captured = []
        handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output.mean(dim=(2, 3))))
        try:
            unet(batch)
        finally:
            handle.remove()
        return captured[0]

    return run_batches(net, images[:, None], pooled_bottleneck, device=device)
