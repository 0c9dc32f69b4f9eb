"""The latent denoiser (diffusers' UNet2DConditionModel) and its noise-prediction training.

The condition encoder trains with the denoiser; an exponential moving average of both is what gets
saved and sampled (the raw weights of a small model trained for minutes give noise-like blobs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.training_utils import EMAModel

from cxrbench.conditions import Condition

from .config import DenoiserConfig
from .model import MASK_CHANNELS, LatentDiffusion, noise_schedule
from .training import Trainer


def build_denoiser(config: DenoiserConfig, latent_channels: int, latent_size: int,
                   uses_mask: bool) -> UNet2DConditionModel:
    levels = len(config.block_out_channels)
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=latent_channels + (MASK_CHANNELS if uses_mask else 0),
        out_channels=latent_channels, block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block, cross_attention_dim=config.context_dim,
        attention_head_dim=config.attention_head_dim, norm_num_groups=min(32, config.block_out_channels[0]),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
    )


def train_denoiser(model: LatentDiffusion, latents: torch.Tensor, conditions: list[Condition], trainer: Trainer, *,
                   weights: torch.Tensor | None = None, config: DenoiserConfig | None = None,
                   checkpoints: dict[int, Callable[[], None]] | None = None) -> None:
    """Noise prediction on the (fixed) training latents; conditions dropped at random for guidance.

    `weights` (N,) weigh each latent's loss (rejection-sampling fine-tuning weighs by proxy score);
    `config` overrides the model's own denoiser settings (fine-tuning runs fewer, smaller steps).
    `checkpoints` maps a step count to a call made after that step with the EMA weights in place, then put back:
    with a constant learning rate after warm-up, it sees what a run of exactly that many steps would save (the
    quality curves of tests/benchmarks/ldm_quality_curves.py).
    """
    config = config or model.config.denoiser
    weights = torch.ones(len(latents)) if weights is None else weights.float()
    schedule = noise_schedule()
    parts = torch.nn.ModuleList([model.denoiser, model.encoder])
    ema = EMAModel(parts.parameters(), decay=config.ema_decay, use_ema_warmup=True)
    optimiser = torch.optim.AdamW(parts.parameters(), lr=config.learning_rate, weight_decay=1e-2)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, (step + 1) / 100))
    rows = torch.arange(len(latents))
    latent_size = latents.shape[-1]

    def loss_of(clean: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        batch = [conditions[i] for i in index.tolist()]
        drop = torch.rand(len(batch), generator=trainer.generator, device=trainer.device) < config.condition_dropout
        inputs = model.condition_inputs(batch, latent_size, drop=drop)
        noise = torch.randn(clean.shape, generator=trainer.generator, device=trainer.device)
        t = torch.randint(0, schedule.config.num_train_timesteps, (len(batch),), generator=trainer.generator,
                          device=trainer.device)
        noisy = schedule.add_noise(clean, noise, t)
        per_latent = F.mse_loss(model.predict_noise(noisy, t, model.encode(inputs)).float(), noise,
                                reduction="none").mean(dim=(1, 2, 3))
        return (per_latent * weight).sum() / weight.sum().clamp_min(1e-8)

    steps_done = 0

    def after_step() -> None:
        nonlocal steps_done
        ema.step(parts.parameters())
        steps_done += 1
        if checkpoints and steps_done in checkpoints:
            ema.store(parts.parameters())
            ema.copy_to(parts.parameters())
            parts.eval()
            checkpoints[steps_done]()
            parts.train()
            ema.restore(parts.parameters())

    trainer.loop("denoiser", parts, optimiser, lr_schedule, (latents, rows, weights), config.steps, config.batch_size,
                 loss_of, after_step=after_step)
    ema.copy_to(parts.parameters())
