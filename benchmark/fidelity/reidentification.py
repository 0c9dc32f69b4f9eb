"""Would a patient verifier take a synthetic image for a study of the training patient it is nearest to?

CheXGenBench's re-identification score: a verifier (`reidentification_verifier.py`, trained on real training pairs)
scores each synthetic image with its nearest training image (the caller finds it, e.g.
`memorisation.nearest_training` in a feature space) as a same-patient logit. The threshold is calibrated on real
test images paired with *their* nearest training image, necessarily another patient (the splits are disjoint by
patient): only `quantile` (5%) of those pairs score above it. A generator whose images are as far from any training
patient as a new patient's puts about that share above it; one that reproduces its training patients puts far more.
The share, its Wilson interval and the beta-binomial p-value are memorisation's (`calibrated_share`), on the logits
negated.

The verifier's own quality is its ROC AUC on pairs of real test images, patients it never saw, with an interval from
a bootstrap over test *patients*: a resample draws patients with replacement and every pair comes along with its
patients, a same-patient pair as often as its patient is drawn (c_p times), a pair of two patients c_p × c_q times
(as the pair's copies in the resampled population would be). Pairs share patients, so resampling pairs as if
independent would make the interval too narrow. The interval is the replicates' percentile interval; a replicate
left without a same-patient or a different-patient pair (possible only with very few patients) is drawn again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError, DataError
from .memorisation import calibrated_share
from .metrics import Estimate
from .patient_pairs import VerifierSettings, checked_images, verification_pairs

if TYPE_CHECKING:
    from ..reidentification_verifier import Verifier


class VerifierQuality(BaseModel):
    """How well the verifier tells patients apart on real test pairs."""

    model_config = ConfigDict(extra="forbid")

    auc: Estimate = Field(description="ROC AUC of the same-patient logit on test pairs, with its interval from the "
                                      "bootstrap over test patients.")
    n_pairs: int = Field(description="Test pairs, half same-patient.")
    n_patients: int = Field(description="Test patients the pairs were drawn from.")
    n_boot: int
    confidence: float


def verifier_quality(verifier: Verifier, images: np.ndarray, patient_ids: np.ndarray, *, n_pairs: int = 2000,
                     n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> VerifierQuality:
    """The verifier's AUC on `n_pairs` pairs of the real test images (patients it never saw), seeded."""
    from sklearn.metrics import roc_auc_score

    if n_boot < 1:
        raise ConfigError(f"n_boot: expected at least 1 bootstrap replicate, got {n_boot}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence: expected a level in (0, 1), got {confidence}")
    images = checked_images(images, "test images")
    if len(patient_ids) != len(images):
        raise DataError(f"test images: {len(images)} images but {len(patient_ids)} patient ids")
    first, second, same = verification_pairs(patient_ids, seed=seed, n_pairs=n_pairs, name="test images")
    logits = verifier.pair_logits(images, first, second)
    _, patient = np.unique(np.asarray(patient_ids).astype(str), return_inverse=True)
    first_patient, second_patient = patient[first], patient[second]
    n_patients = int(patient.max()) + 1
    rng = np.random.default_rng([seed, 1])
    replicates = []
    while len(replicates) < n_boot:
        drawn = np.bincount(rng.integers(n_patients, size=n_patients), minlength=n_patients)
        weight = np.where(same, drawn[first_patient], drawn[first_patient] * drawn[second_patient])
        if weight[same].any() and weight[~same].any():
            replicates.append(roc_auc_score(same, logits, sample_weight=weight))
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return VerifierQuality(auc=Estimate(value=roc_auc_score(same, logits), ci_low=low, ci_high=high),
                           n_pairs=n_pairs, n_patients=n_patients, n_boot=n_boot, confidence=confidence)


class ReidentificationResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verifier_seed: int
    verifier_settings: VerifierSettings
    verifier_training_pairs: int = Field(description="Pairs of real training images the verifier was trained on.")
    verifier_quality: VerifierQuality
    n_synthetic: int
    n_test: int
    mean_probability: float = Field(description="Mean same-patient probability of a synthetic image and its nearest "
                                                "training image.")
    test_mean_probability: float = Field(description="The same for real test images and their nearest training "
                                                     "image (always another patient).")
    quantile: float = Field(description="The share of real test pairs called the same patient at the threshold.")
    rank: int = Field(description="r = ceil(quantile × n_test): the threshold is the r-th largest test logit.")
    threshold_logit: float
    threshold_probability: float
    share_above: Estimate = Field(description="Share of synthetic images called the same patient as their nearest "
                                              "training image (logit above the threshold), with its Wilson interval.")
    confidence: float = Field(description="Coverage of `share_above`'s interval.")
    expected_share: float = Field(description="The mean share of a generator whose images are as far from every "
                                              "training patient as real test images: r / (n_test + 1).")
    p_value: float = Field(description="One-sided: the chance that such a generator puts at least this many images "
                                       "above the threshold (beta-binomial; the threshold's sampling error included).")


def reidentification(verifier: Verifier, synthetic_images: np.ndarray, nearest_training_images: np.ndarray,
                     test_images: np.ndarray, test_nearest_training_images: np.ndarray, *,
                     test_patient_ids: np.ndarray, quantile: float = 0.05, confidence: float = 0.95,
                     n_pairs: int = 2000, n_boot: int = 1000, seed: int = 0) -> ReidentificationResult:
    """The share of synthetic images the verifier takes for their nearest training image's patient, against the
    threshold real test images calibrate, and the verifier's AUC on test pairs (`n_pairs`, `n_boot`, `seed`)."""
    synthetic = _checked_pairs(synthetic_images, nearest_training_images, "synthetic images")
    test = _checked_pairs(test_images, test_nearest_training_images, "test images")
    if synthetic[0].shape[1:] != test[0].shape[1:]:
        raise DataError(f"synthetic images are {synthetic[0].shape[1:]} pixels, test images {test[0].shape[1:]}; "
                        f"the verifier needs both at the task's size")
    synthetic_logits, test_logits = verifier.logits(*synthetic), verifier.logits(*test)
    share = calibrated_share(-synthetic_logits, -test_logits, quantile, confidence, "test images")
    threshold = -share.threshold
    return ReidentificationResult(
        verifier_seed=verifier.seed, verifier_settings=verifier.settings,
        verifier_training_pairs=verifier.n_training_pairs,
        verifier_quality=verifier_quality(verifier, test_images, test_patient_ids, n_pairs=n_pairs, n_boot=n_boot,
                                          confidence=confidence, seed=seed),
        n_synthetic=len(synthetic_logits), n_test=len(test_logits),
        mean_probability=float(_sigmoid(synthetic_logits).mean()),
        test_mean_probability=float(_sigmoid(test_logits).mean()),
        quantile=quantile, rank=share.rank, threshold_logit=threshold, threshold_probability=float(_sigmoid(threshold)),
        share_above=share.share_below, confidence=confidence, expected_share=share.expected_share,
        p_value=share.p_value)


def _checked_pairs(images: np.ndarray, nearest: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """`images` and their nearest training images, checked to be image arrays of one shape."""
    images, nearest = checked_images(images, name), checked_images(nearest, f"{name}' nearest training images")
    if images.shape != nearest.shape:
        raise DataError(f"{name}: shape {images.shape}, their nearest training images {nearest.shape}; expected one "
                        f"nearest training image per image, of the same size")
    return images, nearest


def _sigmoid(logits: np.ndarray | float) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))
