"""`ldm_mask_reviewed`: the reference LDM filtered and fine-tuned by reviewers' verdicts instead of a proxy.

The reviewers judged one synthetic set of the plain `ldm_mask` (the one `cxrbench review` shows:
seed 0 at the task's first default ratio); their JSONL feedback is used exactly like the proxy's
verdicts. Round 0 rejection-samples: an image whose hash a reviewer rejected is drawn again, so the
next synthetic set loses exactly those images. Round 1 fine-tunes on the accepted images (weight 1).
Fitting regenerates the reviewed set from the plain model (generation is deterministic) to know
which hashes exist and to have the accepted images' pixels; feedback lines that name another
revision, an unknown hash, or cannot be read are skipped, counted and logged.
The proxy is still trained, to report how often reviewers and proxy agree (Cohen's kappa).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from cxrbench.cache import file_sha256
from cxrbench.conditions import Condition
from cxrbench.errors import GeneratorError
from cxrbench.feedback import read_feedback
from cxrbench.generator import Generator
from cxrbench.protocol import REVIEWED_SEED, synthetic_count
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta, TaskMeta
from cxrbench.synthetic import image_sha256

from .generator import MaskConditionedLDM
from .refined import ProxyRefinedLDM, RefineConfig, RefinedOptions

log = logging.getLogger(__name__)

class ReviewedOptions(RefinedOptions):
    """The proxy-refined LDM's options, the reviewers' feedback file, and at most one fine-tuning round."""

    feedback: Path = Field(description="the path of the reviewers' JSONL file (cxrbench review writes it)")

    @field_validator("refine")
    @classmethod
    def _one_round(cls, refine: RefineConfig) -> RefineConfig:
        if refine.rounds > 1:
            raise ValueError("reviewers judged the plain model's images once, so rounds is at most 1")
        return refine


def reviewed_count(task: TaskMeta, n_train: int) -> int:
    """Size of the reviewed set: the task's first default ratio, as the runner sizes it."""
    return synthetic_count(task.default_ratios[0], n_train)


class MaskReviewedLDM(ProxyRefinedLDM):
    Options = ReviewedOptions
    options: ReviewedOptions
    uses_mask = True
    plain = MaskConditionedLDM
    own_sections = ("refine", "feedback")
    scorer_name = "reviewer"
    meta = GeneratorMeta(
        name="ldm_mask_reviewed", version="1", role="generator", conditioning=["mask"], variant_of="ldm_mask",
        description="ldm_mask filtered by reviewers' verdicts (cxrbench review) and fine-tuned on the images they "
                    "accepted; reports reviewer-vs-proxy agreement.")

    def __init__(self, task: TaskMeta, **config: Any) -> None:
        super().__init__(task, **config)
        self.feedback = self.options.feedback
        self.rejected: set[str] = set()
        self.review: dict[str, Any] = {}
        self.reviewed_revision: str | None = None

    def fit_identity(self) -> dict[str, Any]:
        if not self.feedback.is_file():
            raise GeneratorError(f"{self.meta.name}: feedback file {self.feedback} does not exist")
        return {**super().fit_identity(), "feedback_sha256": file_sha256(self.feedback)}

    def start_from(self, parent: Generator) -> None:
        """Reviewers judged the plain model's set: round 0 starts from that model, round 1 from round 0, which
        recorded its revision. The verdicts themselves are read again by `fit`."""
        super().start_from(parent)
        self.reviewed_revision = parent.reviewed_revision if isinstance(parent, MaskReviewedLDM) else parent.revision()

    def fit(self, train: SampleSet, *, seed: int, workdir: Path) -> None:
        self.ready_proxy(train)
        conditions, images, hashes = self._reviewed_set(train)
        feedback = read_feedback(self.feedback, revision=self.reviewed_revision, known_hashes=set(hashes))
        for problem in feedback.problems:
            log.warning("skipped feedback line: %s", problem)
        log.info("%s: %s", self.feedback, feedback.summary())
        verdicts = [feedback.verdicts.get(h) for h in hashes]
        reviewed = np.array([v is not None for v in verdicts])
        accepted = np.array([v is not None and v.verdict == "accept" for v in verdicts])
        self.rejected = {h for h, v in zip(hashes, verdicts) if v is not None and v.verdict == "reject"}
        self.review = {"feedback": str(self.feedback), "summary": feedback.summary(),
                       "skipped": dict(feedback.skipped), "reviewed": int(reviewed.sum()),
                       "rejected": len(self.rejected),
                       **self._agreement_with_proxy(images, conditions, reviewed, accepted)}
        if self.refine.rounds > 0:
            chosen = [c for c, r in zip(conditions, reviewed) if r]
            self.history.append(self.finetune_on(train, chosen, images[reviewed], accepted[reviewed].astype(float),
                                                 accepted[reviewed], seed))

    def _reviewed_set(self, train: SampleSet) -> tuple[list[Condition], np.ndarray, list[str]]:
        """The plain model's images for the reviewed set's conditions, and their hashes."""
        from cxrbench.registry import get_task

        conditions = get_task(self.task.name).conditions(train, reviewed_count(self.task, len(train)),
                                                         seed=REVIEWED_SEED)
        images = self.plain_samples(conditions, seed=REVIEWED_SEED)
        return conditions, images, [image_sha256(image) for image in images]

    def _agreement_with_proxy(self, images: np.ndarray, conditions: list[Condition], reviewed: np.ndarray,
                              accepted: np.ndarray) -> dict[str, Any]:
        """Cohen's kappa between reviewers' and the proxy's accept/reject on the reviewed images."""
        from sklearn.metrics import cohen_kappa_score

        if not reviewed.any():
            return {"proxy_agreement": None, "cohen_kappa": None}
        index = np.flatnonzero(reviewed)
        proxy = self.proxy.scores(images[index], [conditions[i] for i in index], device=self.device) >= \
            self.refine.threshold
        agreement = float((proxy == accepted[index]).mean())
        both_constant = len(set(proxy.tolist()) | set(accepted[index].tolist())) < 2
        kappa = None if both_constant else float(cohen_kappa_score(accepted[index], proxy))
        log.info("%s: reviewers and proxy agree on %.0f%% of %d images (Cohen's kappa %s)", self.meta.name,
                 100 * agreement, len(index), "n/a" if kappa is None else f"{kappa:.2f}")
        return {"proxy_agreement": agreement, "cohen_kappa": kappa}

    def scores(self, images: np.ndarray, conditions: list[Condition]) -> np.ndarray:
        """1 for an image no reviewer rejected, 0 for one they did."""
        return np.array([0.0 if image_sha256(image) in self.rejected else 1.0 for image in images])

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        images = super().generate(conditions, seed=seed, batch_size=batch_size)
        self._notes["review"] = self.review
        return images

    def save(self, directory: Path) -> None:
        super().save(directory)
        (directory / "review.json").write_text(json.dumps(
            {"review": self.review, "rejected": sorted(self.rejected), "reviewed_revision": self.reviewed_revision},
            indent=1))

    def load(self, directory: Path) -> None:
        super().load(directory)
        saved = json.loads((directory / "review.json").read_text())
        self.review, self.rejected = saved["review"], set(saved["rejected"])
        self.reviewed_revision = saved["reviewed_revision"]
