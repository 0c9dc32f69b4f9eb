"""The reference generators `ldm_text` and `ldm_mask`: a latent diffusion model fitted on the task's training split.

Fitting trains the autoencoder, then the denoiser with its condition encoder, on the training split
only; the runner caches the fitted bundle under a key of (task data, config), so it is trained once.
Under `init: pretrained` the same model is first fitted on the task's pretraining pool (a fit of its own,
shared by every regime and seed: `refines`), and fitting fine-tunes its denoiser on the training split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cxrbench.conditions import Condition, LabelCondition, MaskCondition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta, TaskMeta

from .config import LDMConfig, LDMOptions, resolve_config
from .state import RefinedState

if TYPE_CHECKING:
    import torch

    from .model import LatentDiffusion
    from .training import Trainer

log = logging.getLogger(__name__)


FIT_VERSION = "1"
"""Bumped when the fitting code changes; `meta.version` is bumped when sampling changes."""


class LatentDiffusionGenerator(Generator):
    trainable = True
    Options = LDMOptions
    uses_mask: ClassVar[bool]
    own_sections: ClassVar[tuple[str, ...]] = ()
    """Config sections a variant reads itself; the rest configures the latent diffusion model."""

    def __init__(self, task: TaskMeta, **config: Any) -> None:
        super().__init__(task, **config)
        self.settings: LDMConfig = resolve_config(self.options, task.resolution)
        levels = len(self.settings.autoencoder.block_out_channels)
        if task.resolution % 2 ** (levels - 1):
            raise GeneratorError(f"resolution {task.resolution} is not divisible by the autoencoder's "
                                 f"downsampling {2 ** (levels - 1)} (preset {self.settings.preset})")
        self.model = None

    def ldm_config(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items() if k not in self.own_sections}

    def fit_identity(self) -> dict[str, Any]:
        """The resolved model and training settings; the sampler's settings do not change what is fitted. The
        pretraining fit is identified by the model's settings alone (not how it is later fine-tuned), so every
        fine-tuning of it shares it; `init: scratch` adds nothing, so the fits made before the option stay cached."""
        settings = self.settings.model_dump(mode="json", exclude={"sampler", "init", "finetune"})
        identity = {"generator": self.meta.name, "fit_version": FIT_VERSION, "settings": settings}
        if self.fit_source == "pretraining":
            return {**identity, "stage": "pretraining"}
        if self.pretrains():
            return {**identity, "init": "pretrained", "finetune": self.settings.finetune.model_dump(mode="json")}
        return identity

    def pretrains(self) -> bool:
        return self.settings.init == "pretrained"

    def refines(self) -> LatentDiffusionGenerator | None:
        """Under `init: pretrained`, the same model fitted on the task's pretraining pool, which `fit` fine-tunes."""
        if not self.pretrains() or self.fit_source == "pretraining":
            return None
        pretraining = type(self)(self.task, device=self.device, **self.ldm_config())
        pretraining.fit_source = "pretraining"
        return pretraining

    def from_scratch(self) -> LatentDiffusionGenerator:
        return type(self)(self.task, device=self.device, **{**self.config, "init": "scratch"})

    def start_from(self, parent: Generator) -> None:
        if not (isinstance(parent, LatentDiffusionGenerator) and parent.fit_source == "pretraining"):
            raise GeneratorError(f"{self.meta.name} fine-tunes its own fit on the pretraining pool, not "
                                 f"{parent.meta.name}'s")
        self.model = parent.handed_on().model

    def fit(self, train: SampleSet, *, seed: int, workdir: Path) -> None:
        if self.uses_mask and train.masks is None:
            raise GeneratorError(f"{self.meta.name} learns from masks, but task {self.task.name} has none")
        import torch

        with torch.random.fork_rng(devices=[]):  # seeds parameter initialisation, leaves the caller's RNG alone
            torch.manual_seed(seed)
            if self.pretrains() and self.fit_source == "train":
                self._finetune(train, seed)
            else:
                self._fit(train, seed)

    def _finetune(self, train: SampleSet, seed: int) -> None:
        """The pretrained model (handed over by `start_from`) adapted to `train`: the denoiser and condition encoder
        train on for `finetune.steps`; the autoencoder and the tokenizer stay as pretrained."""
        from .denoiser import train_denoiser
        from .model import encode_latents, model_range
        from .training import Trainer

        model = self._fitted()
        latents = encode_latents(model.autoencoder, model_range(train.images))
        conditions = training_conditions(train, self.task.labels, with_masks=self.uses_mask)
        settings = self.settings.denoiser.model_copy(update=self.settings.finetune.model_dump())
        log.info("%s: fine-tuning the pretrained denoiser on %d latents for %d steps", self.meta.name, len(latents),
                 settings.steps)
        train_denoiser(model, latents, conditions, Trainer(self.device, seed, self.settings.mixed_precision),
                       config=settings)

    def _fit(self, train: SampleSet, seed: int) -> None:
        from .denoiser import train_denoiser
        from .training import Trainer

        trainer = Trainer(self.device, seed, self.settings.mixed_precision)
        self.model, latents, conditions = untrained_denoising(self.settings, self.task, train, trainer,
                                                              uses_mask=self.uses_mask)
        log.info("%s: training the denoiser on %d latents of %s", self.meta.name, len(latents),
                 tuple(latents.shape[1:]))
        train_denoiser(self.model, latents, conditions, trainer)

    def save(self, directory: Path) -> None:
        self._fitted().save(directory)

    def load(self, directory: Path) -> None:
        from .model import LatentDiffusion

        self.model = LatentDiffusion.load(directory).to(self.device)

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        return self.plain_samples(conditions, seed=seed, batch_size=batch_size)

    def plain_samples(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        """The model's samples, unfiltered: what the plain LDM generates, and what a refined variant draws from."""
        from .sampler import sample
        from .training import Trainer

        autocast = Trainer(self.device, seed, self.settings.mixed_precision).autocast
        return sample(self._fitted(), conditions, seed=seed, batch_size=batch_size, resolution=self.task.resolution,
                      autocast=autocast)

    def handed_on(self) -> RefinedState:
        """The state a generator refining this one starts from: the plain model, nothing refined yet."""
        return RefinedState(model=self._fitted())

    def _fitted(self):
        if self.model is None:
            raise GeneratorError(f"{self.meta.name} must be fitted or loaded before it can generate or save")
        return self.model


def untrained_denoising(settings: LDMConfig, task: TaskMeta, train: SampleSet, trainer: Trainer, *,
                        uses_mask: bool) -> tuple[LatentDiffusion, torch.Tensor, list[Condition]]:
    """The autoencoder trained on `train`, the training latents and conditions, and the model around them with its
    denoiser and condition encoder not trained yet: the first half of a fit, which the quality curves share."""
    from ..prompts import prompt_of
    from .autoencoder import train_autoencoder
    from .context import ConditionEncoder, build_tokenizer
    from .denoiser import build_denoiser
    from .model import LatentDiffusion, encode_latents, model_range

    images = model_range(train.images)
    log.info("training the autoencoder on %d images", len(images))
    autoencoder = train_autoencoder(images, settings.autoencoder, trainer)
    latents = encode_latents(autoencoder, images)
    conditions = training_conditions(train, task.labels, with_masks=uses_mask)
    tokenizer = build_tokenizer(prompt_of(c) for c in conditions)
    denoiser_config = settings.denoiser
    encoder = ConditionEncoder(len(task.labels), tokenizer.get_vocab_size(), denoiser_config.context_dim,
                               denoiser_config.prompt_tokens, denoiser_config.text_layers)
    denoiser = build_denoiser(denoiser_config, settings.autoencoder.latent_channels, latents.shape[-1], uses_mask)
    model = LatentDiffusion(settings, list(task.labels), uses_mask, autoencoder, denoiser, encoder,
                            tokenizer).to(trainer.device)
    return model, latents, conditions


def training_conditions(train: SampleSet, labels: list[str], *, with_masks: bool) -> list[Condition]:
    """Each training image's own condition: its labels, and its mask for a mask-conditioned model."""
    conditions: list[Condition] = []
    for i in range(len(train)):
        values = {name: int(v) for name, v in zip(labels, train.labels[i])}
        if with_masks:
            conditions.append(MaskCondition(labels=values, mask=train.masks[i], source_id=str(train.sample_ids[i])))
        else:
            conditions.append(LabelCondition(labels=values))
    return conditions


class TextConditionedLDM(LatentDiffusionGenerator):
    uses_mask = False
    meta = GeneratorMeta(
        name="ldm_text", version="2", role="generator", conditioning=["label", "text"],
        description="Reference latent diffusion model (diffusers AutoencoderKL + UNet2DConditionModel) conditioned "
                    "on label tokens and a templated prompt, with classifier-free guidance.")


class MaskConditionedLDM(LatentDiffusionGenerator):
    uses_mask = True
    meta = GeneratorMeta(
        name="ldm_mask", version="2", role="generator", conditioning=["mask"],
        description="Reference latent diffusion model conditioned on a segmentation mask (concatenated to the "
                    "latent input) and its labels, with classifier-free guidance.")
