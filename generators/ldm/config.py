"""Sizes and training settings of the reference latent diffusion model, as named presets.

A preset is part of the generator's config, so it enters the generator's revision and the fit's
cache key: changing any number here trains (and caches) a new model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from cxrbench.options import GeneratorOptions

Channels = tuple[Annotated[int, Field(ge=1, le=4096)], ...]
Steps = Annotated[int, Field(ge=1, le=10_000_000)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
LearningRate = Annotated[float, Field(gt=0, le=1)]


class AutoencoderConfig(GeneratorOptions):
    block_out_channels: Channels = Field(
        min_length=1, max_length=8, description="One entry per level; each level after the first halves the size.")
    latent_channels: int = Field(4, ge=1, le=64)
    mid_block_attention: bool = Field(description="Costs about half a step at 128 px; off for the small presets.")
    steps: Steps
    batch_size: BatchSize
    learning_rate: LearningRate
    kl_weight: float = Field(1e-6, ge=0, le=1)


class DenoiserConfig(GeneratorOptions):
    block_out_channels: Channels = Field(min_length=1, max_length=8)
    layers_per_block: int = Field(1, ge=1, le=16)
    attention_head_dim: int = Field(8, ge=1, le=1024)
    context_dim: int = Field(ge=1, le=8192, description="Width of the cross-attention context (label and prompt "
                                                        "tokens).")
    prompt_tokens: int = Field(16, ge=1, le=1024, description="Prompts are padded or cut to this many word tokens.")
    text_layers: int = Field(2, ge=1, le=64)
    steps: Steps
    batch_size: BatchSize
    learning_rate: LearningRate
    ema_decay: float = Field(0.999, ge=0, lt=1)
    condition_dropout: float = Field(0.1, ge=0, le=1, description="Probability of training without the condition "
                                                                  "(for guidance).")


class SamplerConfig(GeneratorOptions):
    steps: int = Field(20, ge=1, le=10_000)
    guidance_scale: float = Field(2.0, ge=0, le=100, description="Classifier-free guidance; 1 = plain conditional "
                                                                 "sampling.")


class FinetuneConfig(GeneratorOptions):
    """How a pretrained model adapts to the regime's training split: the denoiser (and its condition encoder) trains
    on; the autoencoder stays as pretrained, as latent diffusion models are usually fine-tuned."""

    steps: Steps = 500
    learning_rate: LearningRate = 2e-4


class LDMConfig(GeneratorOptions):
    preset: str
    autoencoder: AutoencoderConfig
    denoiser: DenoiserConfig
    sampler: SamplerConfig = SamplerConfig()
    init: Literal["scratch", "pretrained"] = Field(
        "pretrained", description="pretrained: fit on the task's pretraining pool first (one cached fit, shared by "
                                  "every regime and seed), then fine-tune on the training split (`finetune`), as the "
                                  "paper's model was; scratch: fit on the regime's training split alone.")
    finetune: FinetuneConfig = FinetuneConfig()
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "bf16", description="Autocast dtype on CUDA; the CPU always runs fp32.")


PRESETS: dict[str, LDMConfig] = {
    # Unit tests: a few steps, every code path, seconds; from scratch (rendering a pool takes longer than the fit),
    # so a test of the pretraining chain asks for `init: pretrained` itself.
    "tiny": LDMConfig(
        preset="tiny", init="scratch",
        autoencoder=AutoencoderConfig(block_out_channels=(8, 8), latent_channels=4, mid_block_attention=False,
                                      steps=4, batch_size=4, learning_rate=1e-3),
        denoiser=DenoiserConfig(block_out_channels=(16, 16), context_dim=16, text_layers=1, steps=4, batch_size=4,
                                learning_rate=1e-3, attention_head_dim=4, prompt_tokens=12),
        sampler=SamplerConfig(steps=3),
        finetune=FinetuneConfig(steps=4),
    ),
    # The embedded and open suites (64 px) on a 2-core CPU: pretrains in about 10 minutes (docs/results-ldm.md).
    "cpu": LDMConfig(
        preset="cpu",
        autoencoder=AutoencoderConfig(block_out_channels=(16, 32, 32), latent_channels=4, mid_block_attention=False,
                                      steps=1000, batch_size=8, learning_rate=2e-3),
        denoiser=DenoiserConfig(block_out_channels=(32, 64, 64), context_dim=64, steps=4000, batch_size=16,
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


def overrides_of(model: type[BaseModel], **fields: Any) -> type[GeneratorOptions]:
    """`model` as options that override a preset: every field optional (unset keeps the preset's value, null is
    refused), with its type and bounds; a nested model becomes its own overrides; `fields` replace fields."""
    def override(name: str) -> tuple[Any, Any]:
        info = model.model_fields[name]
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            kind = overrides_of(kind)
        return (Annotated[(kind, *info.metadata)] if info.metadata else kind), Field(None, description=info.description)

    return create_model(f"{model.__name__}Overrides", __base__=GeneratorOptions,
                        **({name: override(name) for name in model.model_fields} | fields))


LDMOptions = overrides_of(LDMConfig, preset=(Literal[tuple(PRESETS)], Field(
    None, description="A preset's name (default: cpu up to 128 px, else paper); the other options override it.")))
"""The options of `ldm_text` and `ldm_mask`: a preset, and any of its settings (e.g. `denoiser: {steps: 500}`)."""


def resolve_config(options: GeneratorOptions, resolution: int) -> LDMConfig:
    """The preset named in `options` (default: `cpu` up to 128 px, else `paper`), with the options' settings merged
    in; `options` may hold more than the LDM's own (a variant's sections), which are left out."""
    given = options.model_dump(exclude_unset=True, include=set(LDMOptions.model_fields))
    merged = PRESETS[given.pop("preset", None) or ("cpu" if resolution <= 128 else "paper")].model_dump()
    for name, value in given.items():
        merged[name] = {**merged[name], **value} if isinstance(value, dict) else value
    return LDMConfig.model_validate(merged)
