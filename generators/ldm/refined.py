"""`ldm_text_proxy` and `ldm_mask_proxy`: the reference LDM filtered and fine-tuned by a proxy model.

Round 0 is the plain LDM's fit plus a proxy trained on the real training split; each later round
draws candidates for the training images' own conditions, keeps those the proxy accepts, and
fine-tunes the denoiser on them weighted by their proxy score, together with the real training
latents (weight 1) so that a few hundred steps on its own samples do not make it forget the data.
Every round is its own cached fit (see `Generator.refines`); generating rejection-samples against
the same proxy and records the acceptance rates in the synthetic set's manifest.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from cxrbench.conditions import Condition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.options import GeneratorOptions
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta, TaskMeta

from .config import LDMOptions
from .generator import LatentDiffusionGenerator, MaskConditionedLDM, TextConditionedLDM, training_conditions
from .selection import acceptance_notes, rejection_sample
from .state import RefinedState

if TYPE_CHECKING:
    from .proxy import Proxy

log = logging.getLogger(__name__)

FINETUNE_SEED = 5_003
"""Seeds the fine-tuning candidates (plus the round number): no run seed draws the same noise."""


class RefineConfig(GeneratorOptions):
    rounds: int = Field(1, ge=0, le=100, description="Fine-tuning rounds; 0 = the plain model, filtered only.")
    threshold: float = Field(0.5, ge=0, le=1, description="Accepted at or above this score.")
    max_draws: int = Field(4, ge=1, le=1000, description="Draws per condition when generating before the best one "
                                                         "is kept.")
    candidates_per_image: int = Field(2, ge=1, le=1000, description="Fine-tuning candidates per real training "
                                                                    "condition.")
    finetune_steps: int = Field(200, ge=1, le=10_000_000)
    finetune_learning_rate: float = Field(2e-4, gt=0, le=1)


class RefinedOptions(LDMOptions):
    """The LDM's options and how the proxy refines it."""

    refine: RefineConfig = RefineConfig()


class ProxyRefinedLDM(LatentDiffusionGenerator):
    Options = RefinedOptions
    options: RefinedOptions
    own_sections = ("refine",)
    plain: ClassVar[type[LatentDiffusionGenerator]]
    scorer_name: ClassVar[str] = "proxy"

    def __init__(self, task: TaskMeta, **config: Any) -> None:
        super().__init__(task, **config)
        self.refine = self.options.refine
        self.proxy: Proxy | None = None
        self.history: list[dict] = []
        """One record per fine-tuning round: candidates, accepted, acceptance rate, mean score."""
        self._notes: dict[str, Any] = {}

    def fit_identity(self) -> dict[str, Any]:
        return {**super().fit_identity(), "refine": self.refine.model_dump()}

    def refines(self) -> LatentDiffusionGenerator:
        if self.refine.rounds == 0:
            return self.plain(self.task, device=self.device, **self.ldm_config())
        earlier = {**self.config, "refine": {**self.refine.model_dump(), "rounds": self.refine.rounds - 1}}
        return type(self)(self.task, device=self.device, **earlier)

    def start_from(self, parent: Generator) -> None:
        if not isinstance(parent, LatentDiffusionGenerator):
            raise GeneratorError(f"{self.meta.name} refines a latent diffusion model, not {parent.meta.name}")
        state = parent.handed_on()
        self.model, self.proxy, self.history = state.model, state.proxy, state.history

    def handed_on(self) -> RefinedState:
        return RefinedState(model=self._fitted(), proxy=self.proxy, history=list(self.history))

    def fit(self, train: SampleSet, *, seed: int, workdir: Path) -> None:
        import torch

        self.ready_proxy(train)
        if self.refine.rounds > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + self.refine.rounds)
                self.history.append(self._finetune_round(train, seed))

    def ready_proxy(self, train: SampleSet) -> None:
        """Check that `start_from` handed a model over; train the proxy on `train` if no earlier round did."""
        if self.model is None:
            raise GeneratorError(f"{self.meta.name} refines a fitted {self.plain.meta.name}: call start_from first")
        if self.proxy is None:
            from .proxy import train_proxy

            log.info("%s: training the proxy on %d real training images", self.meta.name, len(train))
            self.proxy = train_proxy(self.task.name, train, device=self.device)

    def _finetune_round(self, train: SampleSet, seed: int) -> dict:
        real = training_conditions(train, self.task.labels, with_masks=self.uses_mask)
        candidates = real * self.refine.candidates_per_image
        images = self.plain_samples(candidates, seed=FINETUNE_SEED + self.refine.rounds)
        scores = self.proxy.scores(images, candidates, device=self.device)
        return self.finetune_on(train, candidates, images, scores, scores >= self.refine.threshold, seed)

    def finetune_on(self, train: SampleSet, candidates: list[Condition], images: np.ndarray, scores: np.ndarray,
                    accepted: np.ndarray, seed: int) -> dict:
        """One round: the denoiser learns the accepted images (weighted by score) with the real training latents."""
        import torch

        from .denoiser import train_denoiser
        from .model import encode_latents, model_range
        from .training import Trainer

        record = {"round": self.refine.rounds, "candidates": len(candidates), "accepted": int(accepted.sum()),
                  "acceptance_rate": float(accepted.mean()) if len(accepted) else 0.0,
                  "mean_score": float(scores.mean()) if len(scores) else 0.0,
                  "per_condition": acceptance_notes(candidates, np.ones(len(candidates), int), accepted,
                                                    threshold=self.refine.threshold, max_draws=1)["per_condition"]}
        log.info("%s round %d: %d of %d candidates accepted (%.0f%%)", self.meta.name, self.refine.rounds,
                 record["accepted"], record["candidates"], 100 * record["acceptance_rate"])
        if not accepted.any():
            log.warning("%s round %d: nothing was accepted; the round leaves the model as it was",
                        self.meta.name, self.refine.rounds)
            return record
        real = training_conditions(train, self.task.labels, with_masks=self.uses_mask)
        chosen = [c for c, ok in zip(candidates, accepted) if ok]
        autoencoder = self.model.autoencoder
        latents = torch.cat([encode_latents(autoencoder, model_range(train.images)),
                             encode_latents(autoencoder, model_range(images[accepted]))])
        weights = torch.cat([torch.ones(len(train)), torch.from_numpy(scores[accepted]).float()])
        settings = self.settings.denoiser.model_copy(update={"steps": self.refine.finetune_steps,
                                                             "learning_rate": self.refine.finetune_learning_rate})
        trainer = Trainer(self.device, seed + self.refine.rounds, self.settings.mixed_precision)
        train_denoiser(self.model, latents, real + chosen, trainer, weights=weights, config=settings)
        return record

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        images, _, notes = rejection_sample(
            lambda asked, draw_seed: self.plain_samples(asked, seed=draw_seed, batch_size=batch_size),
            self.scores, conditions, seed=seed, threshold=self.refine.threshold, max_draws=self.refine.max_draws)
        self._notes = {"filter": self.scorer_name, **notes, "finetune_rounds": self.history}
        return images

    def scores(self, images: np.ndarray, conditions: list[Condition]) -> np.ndarray:
        return self.proxy.scores(images, conditions, device=self.device)

    def generation_notes(self) -> dict[str, Any]:
        return self._notes

    def save(self, directory: Path) -> None:
        super().save(directory)
        self.proxy.save(directory / "proxy")
        (directory / "rounds.json").write_text(json.dumps(self.history, indent=1))

    def load(self, directory: Path) -> None:
        from .proxy import Proxy

        super().load(directory)
        self.proxy = Proxy.load(directory / "proxy")
        self.history = json.loads((directory / "rounds.json").read_text())


class TextProxyLDM(ProxyRefinedLDM):
    uses_mask = False
    plain = TextConditionedLDM
    meta = GeneratorMeta(
        name="ldm_text_proxy", version="1", role="generator", conditioning=["label", "text"], variant_of="ldm_text",
        description="ldm_text filtered by a proxy classifier (the task's recipe trained on real train only) and "
                    "fine-tuned on its accepted samples weighted by proxy score.")


class MaskProxyLDM(ProxyRefinedLDM):
    uses_mask = True
    plain = MaskConditionedLDM
    meta = GeneratorMeta(
        name="ldm_mask_proxy", version="1", role="generator", conditioning=["mask"], variant_of="ldm_mask",
        description="ldm_mask filtered by a proxy segmenter (the task's recipe trained on real train only, Dice "
                    "against the requested mask) and fine-tuned on its accepted samples weighted by proxy score.")
