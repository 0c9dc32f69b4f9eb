"""The fitted model as one bundle: autoencoder, denoiser, condition encoder and tokenizer, saved the diffusers way.

Each part is written with `save_pretrained` into its own folder, so the weights open with plain
diffusers / tokenizers calls outside cxrbench too; `ldm.json` records what ties them together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from tokenizers import Tokenizer

from cxrbench.conditions import Condition, MaskCondition
from cxrbench.errors import GeneratorError

from ..prompts import prompt_of
from .config import LDMConfig
from .context import ConditionEncoder, label_ids, load_tokenizer, save_tokenizer, tokenize

MASK_CHANNELS = 2
"""A mask condition enters as two extra input channels: the mask at latent size and a 'mask given' flag,
so that 'no mask given' (dropped for guidance) differs from 'an empty mask' (no pneumothorax)."""


def noise_schedule() -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                         prediction_type="epsilon", clip_sample=False)


@dataclass
class LatentDiffusion:
    config: LDMConfig
    labels: list[str]
    uses_mask: bool
    autoencoder: AutoencoderKL
    denoiser: UNet2DConditionModel
    encoder: ConditionEncoder
    tokenizer: Tokenizer

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    def to(self, device: str) -> LatentDiffusion:
        for part in (self.autoencoder, self.denoiser, self.encoder):
            part.to(device)
        return self

    def condition_inputs(self, conditions: list[Condition], latent_size: int, *,
                         drop: torch.Tensor | None = None) -> dict:
        """Everything the denoiser needs besides the noisy latents; `drop` (B,) bool marks unconditional rows."""
        n = len(conditions)
        drop = torch.zeros(n, dtype=torch.bool) if drop is None else drop.cpu()
        values = label_ids(conditions, self.labels)
        values[drop] = 2
        prompts = ["" if d else prompt_of(c) for c, d in zip(conditions, drop.tolist())]
        ids, mask = tokenize(self.tokenizer, prompts, self.config.denoiser.prompt_tokens)
        inputs = {"label_values": values, "token_ids": ids, "token_mask": mask}
        if self.uses_mask:
            inputs["mask_channels"] = mask_channels(conditions, latent_size, drop)
        return {k: v.to(self.device) for k, v in inputs.items()}

    def encode(self, inputs: dict) -> dict:
        """Run the condition encoder once; the result serves every denoising step of a batch."""
        context, context_mask = self.encoder(inputs["label_values"], inputs["token_ids"], inputs["token_mask"])
        return {"context": context, "context_mask": context_mask, "mask_channels": inputs.get("mask_channels")}

    def predict_noise(self, latents: torch.Tensor, timesteps: torch.Tensor, encoded: dict) -> torch.Tensor:
        if self.uses_mask:
            latents = torch.cat([latents, encoded["mask_channels"].to(latents.dtype)], dim=1)
        return self.denoiser(latents, timesteps, encoder_hidden_states=encoded["context"],
                             encoder_attention_mask=encoded["context_mask"]).sample

    def save(self, directory: Path) -> None:
        self.autoencoder.save_pretrained(directory / "autoencoder")
        self.denoiser.save_pretrained(directory / "denoiser")
        self.encoder.save_pretrained(directory / "condition_encoder")
        save_tokenizer(self.tokenizer, directory)
        (directory / "ldm.json").write_text(json.dumps(
            {"config": self.config.model_dump(mode="json"), "labels": self.labels, "uses_mask": self.uses_mask},
            indent=1))

    @classmethod
    def load(cls, directory: Path) -> LatentDiffusion:
        if not (directory / "ldm.json").is_file():
            raise GeneratorError(f"{directory} holds no saved latent diffusion model (ldm.json missing)")
        meta = json.loads((directory / "ldm.json").read_text())
        return cls(config=LDMConfig.model_validate(meta["config"]), labels=meta["labels"], uses_mask=meta["uses_mask"],
                   autoencoder=AutoencoderKL.from_pretrained(directory / "autoencoder").eval(),
                   denoiser=UNet2DConditionModel.from_pretrained(directory / "denoiser").eval(),
                   encoder=ConditionEncoder.from_pretrained(directory / "condition_encoder").eval(),
                   tokenizer=load_tokenizer(directory))


def model_range(images: np.ndarray) -> torch.Tensor:
    """Pipeline images (N, H, W) in [0, 1] -> the autoencoder's input (N, 1, H, W) in [-1, 1]."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32)[:, None] * 2 - 1)


@torch.no_grad()
def encode_latents(autoencoder: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """The scaled latents the denoiser learns from (the posterior's mode), in chunks of 64 images."""
    return torch.cat([autoencoder.encode(chunk.to(autoencoder.device)).latent_dist.mode()
                      for chunk in images.split(64)]) * autoencoder.config.scaling_factor


def mask_channels(conditions: list[Condition], latent_size: int, drop: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w): each mask area-averaged to latent size (a soft mask), and the 'mask given' flag."""
    masks = []
    for condition in conditions:
        if not isinstance(condition, MaskCondition):
            raise GeneratorError(f"a mask-conditioned model needs mask conditions, got a {condition.kind} condition")
        masks.append(np.asarray(condition.mask, dtype=np.float32))
    full = torch.from_numpy(np.stack(masks))[:, None]
    soft = F.interpolate(full, size=(latent_size, latent_size), mode="area")
    given = (~drop).float()[:, None, None, None].expand_as(soft)
    return torch.cat([soft * given, given], dim=1)
