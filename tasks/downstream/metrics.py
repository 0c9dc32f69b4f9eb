"""Scores from stored predictions: F1 thresholds chosen on val, per-image Dice from MONAI."""

from __future__ import annotations

import numpy as np


def f1_counts(prob: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate cut of one label (its distinct val probabilities, ascending) with the integer numerator
    2TP and denominator 2TP + FP + FN of F1 when predicting `prob >= cut`."""
    prob = np.asarray(prob, dtype=np.float64)
    positive = np.asarray(target).astype(bool)
    cuts, value = np.unique(prob, return_inverse=True)
    # Cases at or above cut k: those whose value index is >= k (suffix sums of the per-value counts).
    pos_at = np.bincount(value.reshape(-1), weights=positive, minlength=len(cuts)).astype(np.int64)
    all_at = np.bincount(value.reshape(-1), minlength=len(cuts)).astype(np.int64)
    tp = np.cumsum(pos_at[::-1])[::-1]
    predicted = np.cumsum(all_at[::-1])[::-1]
    n_positive = np.int64(positive.sum())
    return cuts, 2 * tp, predicted + n_positive  # 2TP + FP + FN = (TP + FP) + (TP + FN)


def val_thresholds(val_prob: np.ndarray, val_target: np.ndarray) -> np.ndarray:
    """Per label, the probability threshold that maximises F1 on the validation split (predict `prob >= t`).

    The candidates are the label's distinct val probabilities. F1 = 2TP / (2TP + FP + FN) is compared exactly,
    as fractions of integer counts (cross-multiplied in int64), so rounding cannot split or settle a tie; of
    tied thresholds the lowest wins. A label with one class only on val keeps 0.5 (F1 is undefined there).
    """
    thresholds = np.full(val_prob.shape[1], 0.5)
    for label in range(val_prob.shape[1]):
        if val_target[:, label].min() == val_target[:, label].max():
            continue
        cuts, numerator, denominator = f1_counts(val_prob[:, label], val_target[:, label])
        # A float division is correctly rounded, so it orders distinct F1 values (they differ by at least
        # 1/denominator**2) and finds a maximum; the exact cross-multiplied comparison then finds every tie.
        best = int(np.argmax(numerator / denominator))
        tied = numerator * denominator[best] == numerator[best] * denominator
        thresholds[label] = cuts[int(np.flatnonzero(tied)[0])]
    return thresholds


def dice_per_image(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dice of each (H, W) prediction against its target; an empty target predicted empty scores 1 (SIIM's rule)."""
    import torch
    from monai.metrics import DiceMetric

    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    y_pred = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float32))[:, None]
    y = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[:, None]
    return metric(y_pred, y).numpy()[:, 0].astype(np.float64)
