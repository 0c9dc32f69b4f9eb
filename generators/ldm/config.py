"""Sizes and training settings of the reference latent diffusion model, as named presets.

A preset is part of the generator's config, so it enters the generator's revision and the fit's
cache key: changing any number here trains (and caches) a new model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cxrbench.errors import ConfigError


class AutoencoderConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    block_out_channels: tuple[int, ...] = Field(
        description="One entry per level; each level after the first halves the size.")
    latent_channels: int = 4
    mid_block_attention: bool = Field(description="Costs about half a step at 128 px; off for the small presets.")
    steps: int
    batch_size: int
    learning_rate: float
    kl_weight: float = 1e-6


class DenoiserConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    block_out_channels: tuple[int, ...]
    layers_per_block: int = 1
    attention_head_dim: int = 8
    context_dim: int = Field(description="Width of the cross-attention context (label and prompt tokens).")
    prompt_tokens: int = Field(16, description="Prompts are padded or cut to this many word tokens.")
    text_layers: int = 2
    steps: int
    batch_size: int
    learning_rate: float
    ema_decay: float = 0.999
    condition_dropout: float = Field(0.1, description="Probability of training without the condition (for guidance).")


class SamplerConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    steps: int = 20
    guidance_scale: float = Field(2.0, description="Classifier-free guidance; 1 = plain conditional sampling.")


class LDMConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    preset: str
    autoencoder: AutoencoderConfig
    denoiser: DenoiserConfig
    sampler: SamplerConfig = SamplerConfig()
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "bf16", description="Autocast dtype on CUDA; the CPU always runs fp32.")


PRESETS: dict[str, LDMConfig] = {
    # Unit tests: a few steps, every code path, seconds.
    "tiny": LDMConfig(
        preset="tiny",
        autoencoder=AutoencoderConfig(block_out_channels=(8, 8), latent_channels=4, mid_block_attention=False,
                                      steps=4, batch_size=4, learning_rate=1e-3),
        denoiser=DenoiserConfig(block_out_channels=(16, 16), context_dim=16, text_layers=1, steps=4, batch_size=4,
                                learning_rate=1e-3, attention_head_dim=4, prompt_tokens=12),
        sampler=SamplerConfig(steps=3),
    ),
    # The embedded suite (64 px) on a 2-core CPU: trains in minutes.
    "cpu": LDMConfig(
        preset="cpu",
        autoencoder=AutoencoderConfig(block_out_channels=(16, 32, 32), latent_channels=4, mid_block_attention=False,
                                      steps=400, batch_size=8, learning_rate=2e-3),
        denoiser=DenoiserConfig(block_out_channels=(32, 64, 64), context_dim=64, steps=2000, batch_size=16,
                                learning_rate=1e-3),
    ),
    # Paper scale (256 px and up) for a GPU: SD-like widths, 8x downsampling.
    "paper": LDMConfig(
        preset="paper",
        autoencoder=AutoencoderConfig(block_out_channels=(64, 128, 256, 256), latent_channels=4,
                                      mid_block_attention=True, steps=20_000, batch_size=16, learning_rate=1e-4),
        denoiser=DenoiserConfig(block_out_channels=(128, 256, 512, 512), layers_per_block=2, attention_head_dim=8,
                                context_dim=256, prompt_tokens=32, text_layers=4, steps=100_000, batch_size=32,
                                learning_rate=1e-4, ema_decay=0.9999),
        sampler=SamplerConfig(steps=25, guidance_scale=3.0),
    ),
}


def resolve_config(config: dict, resolution: int) -> LDMConfig:
    """The preset named in `config` (default: `cpu` up to 128 px, else `paper`), with overrides merged in."""
    name = config.get("preset") or ("cpu" if resolution <= 128 else "paper")
    if name not in PRESETS:
        raise ConfigError(f"unknown LDM preset {name!r}; known presets: {', '.join(PRESETS)}")
    merged = PRESETS[name].model_dump()
    for section, values in config.items():
        if section == "preset":
            continue
        if section not in merged or not isinstance(values, dict):
            raise ConfigError(f"LDM config has no section {section!r}; sections: autoencoder, denoiser, sampler")
        merged[section] = {**merged[section], **values}
    return LDMConfig.model_validate(merged)
