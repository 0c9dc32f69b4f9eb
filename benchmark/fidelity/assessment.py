"""What a run reports about one synthetic set beside its Δs: fidelity and diversity against the real test images,
memorisation of the regime's real training images (in feature and in pixel space) and patient re-identification.

One set per arm: the synthetic set of the reviewed seed at the task's first default ratio (what agreement and review
look at), so that every arm of a task is judged on a set of the same size. Every number is computed in the feature
space of one named extractor (`extractor`, with its weights' hash): numbers of two extractors never share a column.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .identity import ExtractorIdentity
from .memorisation import MemorisationResult
from .metrics import FidelityResult, FidelitySettings, GroupFidelity
from .reidentification import ReidentificationResult

MemorisationSpace = Literal["features", "pixels"]
NO_FINDING = "no finding"
"""The group of images without any label (classification)."""
WITH_FINDING, WITHOUT_FINDING = "with finding", "without finding"
"""Segmentation's groups: images whose mask marks something, and images with an empty mask."""
NO_IMAGES = "the synthetic images are not at hand (an entry on data that may not be published carries features only)"
"""Why an entry's arm has no re-identification score (and no pixel-space memorisation): both need the images."""


class QualitySettings(BaseModel):
    """How an arm's quality is computed: part of its cache key and recorded with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fidelity: FidelitySettings = Field(
        default=FidelitySettings(n_boot=200),
        description="Fidelity metrics' settings; 200 bootstrap replicates keep the step cheap beside the cells.")
    memorisation_quantile: float = Field(default=0.05, gt=0, le=0.5,
                                         description="The test-distance quantile that sets the memorisation "
                                                     "threshold.")
    closest_pairs: int = Field(default=8, ge=0, description="Closest (synthetic, training) pairs kept per space.")


class ArmQuality(BaseModel):
    """Fidelity, diversity, memorisation and re-identification of one arm's synthetic set."""

    model_config = ConfigDict(extra="forbid")

    generator: str
    ratio: float
    seed: int = Field(description="The synthetic set's seed (the reviewed seed).")
    synthetic_key: str = Field(description="Cache key of the synthetic set assessed.")
    n_synthetic: int
    n_real_test: int = Field(description="Real test images: the fidelity reference and the memorisation "
                                         "calibration.")
    n_real_train: int = Field(description="The regime's real training images, searched for nearest neighbours.")
    extractor: ExtractorIdentity
    settings: QualitySettings
    fidelity: FidelityResult = Field(description="Against the real test images, in the extractor's feature space.")
    fidelity_by_group: dict[str, GroupFidelity] = Field(
        description="Per label and `no finding` (classification; a multi-label image is in each of its labels' "
                    "groups), or `with finding` / `without finding` by mask (segmentation).")
    memorisation: dict[MemorisationSpace, MemorisationResult] = Field(
        description="Nearest regime training image in the extractor's feature space and in pixel space (flattened "
                    "pixels at the task's resolution).")
    reidentification: ReidentificationResult | None = Field(
        default=None, description="The patient verifier on each synthetic image and its nearest training image in "
                                  "feature space; None where no verifier could be trained (`no_reidentification`).")
    no_reidentification: str | None = Field(default=None, description="Why `reidentification` is None, e.g. a "
                                                                      "training split without patients with two "
                                                                      "studies.")
