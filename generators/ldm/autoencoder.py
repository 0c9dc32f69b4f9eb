"""The single-channel image autoencoder (diffusers' AutoencoderKL) and how it is trained.

Trained from scratch on the task's training images only: no pretrained autoencoder may be fetched,
and an RGB one would waste two thirds of its capacity on grey radiographs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from .config import AutoencoderConfig
from .training import Trainer


def build_autoencoder(config: AutoencoderConfig) -> AutoencoderKL:
    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=1, out_channels=1, latent_channels=config.latent_channels,
        block_out_channels=config.block_out_channels, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        norm_num_groups=min(8, config.block_out_channels[0]), mid_block_add_attention=config.mid_block_attention,
    )


def train_autoencoder(images: torch.Tensor, config: AutoencoderConfig, trainer: Trainer) -> AutoencoderKL:
    """Reconstruction (L1 + MSE) plus a small KL term; images (N, 1, H, W) in [-1, 1].

    Also sets `scaling_factor` to 1 / std of the latents, so the denoiser sees unit-variance latents.
    """
    vae = build_autoencoder(config).to(trainer.device)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.steps)

    def loss_of(batch: torch.Tensor) -> torch.Tensor:
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=trainer.generator)).sample
        return F.l1_loss(reconstruction, batch) + F.mse_loss(reconstruction, batch) + \
            config.kl_weight * posterior.kl().mean()

    trainer.loop("autoencoder", vae, optimiser, schedule, images, config.steps, config.batch_size, loss_of)
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(chunk.to(trainer.device)).latent_dist.mode() for chunk in images.split(64)])
    vae.register_to_config(scaling_factor=float(1.0 / latents.std().clamp_min(1e-6)))
    return vae
