"""Scores from stored predictions: F1 thresholds chosen on val, per-image Dice from MONAI."""

from __future__ import annotations

import numpy as np


def val_thresholds(val_prob: np.ndarray, val_target: np.ndarray) -> np.ndarray:
    """Per label, the probability threshold that maximises F1 on the validation split."""
    from sklearn.metrics import precision_recall_curve

    thresholds = np.full(val_prob.shape[1], 0.5)
    for label in range(val_prob.shape[1]):
        if val_target[:, label].min() == val_target[:, label].max():
            continue  # F1 is undefined without both classes; keep 0.5
        precision, recall, cut = precision_recall_curve(val_target[:, label], val_prob[:, label])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        thresholds[label] = cut[int(np.argmax(f1[:-1]))]
    return thresholds


def dice_per_image(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dice of each (H, W) prediction against its target; an empty target predicted empty scores 1 (SIIM's rule)."""
    import torch
    from monai.metrics import DiceMetric

    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    y_pred = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float32))[:, None]
    y = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[:, None]
    return metric(y_pred, y).numpy()[:, 0].astype(np.float64)
