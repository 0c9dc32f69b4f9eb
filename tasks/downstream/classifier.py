"""Classification recipe: a small CNN at the embedded resolution, torchxrayvision's DenseNet at paper scale."""

from __future__ import annotations

from typing import Literal

import numpy as np

from cxrbench.determinism import deterministic_cell

from .training import Schedule, fit, recompute_batch_norm, run_batches

ClassifierName = Literal["small_cnn", "xrv_densenet"]


def build_classifier(name: ClassifierName, n_labels: int):
    import torch.nn as nn

    if name == "xrv_densenet":
        import torchxrayvision as xrv

        # Random init: torchxrayvision's DenseNet-121 layout with our label count; never downloads weights.
        return xrv.models.DenseNet(weights=None, num_classes=n_labels, in_channels=1)

    def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    # Sized for the CPU: about 4 ms per 64x64 image per training step on one thread.
    return nn.Sequential(*block(1, 16, stride=2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                         *block(64, 64), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(64, n_labels))


def fit_classifier(images: np.ndarray, labels: np.ndarray, *, model: ClassifierName, schedule: Schedule, seed: int,
                   device: str, real_rows: np.ndarray):
    """The recipe's classifier trained on (images, multi-hot labels): initialised and shuffled from `seed`; then its
    BatchNorm statistics are recomputed on the real training rows (`real_rows`)."""
    import torch.nn as nn

    with deterministic_cell(seed):
        net = build_classifier(model, labels.shape[1])
        fit(net, images[:, None], labels, nn.BCEWithLogitsLoss(), schedule, seed=seed, device=device)
        recompute_batch_norm(net, images[:, None], real_rows=real_rows, device=device)
    return net


def classifier_features(net, images: np.ndarray, *, model: ClassifierName, device: str) -> np.ndarray:
    """The classifier's image representation (N, D), the layer its linear head reads: torchxrayvision's DenseNet's
    pooled `features2` (1024-d); the small CNN's pooled vector before dropout and the linear layer (64-d)."""
    if model == "xrv_densenet":
        return run_batches(net, images[:, None], lambda densenet, batch: densenet.features2(batch), device=device)
    return run_batches(_small_cnn_trunk(net), images[:, None], lambda trunk, batch: trunk(batch), device=device)


def _small_cnn_trunk(net):
    """The small CNN without its head (Dropout, Linear): a view sharing the trained modules."""
    import torch.nn as nn

    if not (isinstance(net, nn.Sequential) and isinstance(net[-2], nn.Dropout) and isinstance(net[-1], nn.Linear)):
        raise TypeError(f"expected the recipe's small_cnn (a Sequential ending in Dropout, Linear), got "
                        f"{type(net).__name__}")
    return net[:-2]
