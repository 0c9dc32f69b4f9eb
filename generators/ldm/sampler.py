"""Sampling: DPM-Solver++ with classifier-free guidance, then the autoencoder's decoder.

Each image's starting noise comes from its own seed (run seed, index), so an image does not depend
on the batch size or on what else is in its batch, and `generate` is reproducible on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler

from cxrbench import progress
from cxrbench.conditions import Condition

from .model import LatentDiffusion, noise_schedule


def sampling_schedule() -> DPMSolverMultistepScheduler:
    """DPM-Solver++ (2nd order multistep), without dynamic thresholding.

    Chosen by measurement on the `cpu` preset fitted to phantom_seg (16 samples, 20 steps, guidance 2):
    pixel std 0.216 against the real images' 0.237 without thresholding; thresholding the predicted
    clean latents at 1 or 3 (Imagen-style, which divides by the threshold) washed them out to a
    std of 0.155 and 0.091, because these latents have unit variance, not a [-1, 1] range.
    """
    return DPMSolverMultistepScheduler.from_config(noise_schedule().config, algorithm_type="dpmsolver++",
                                                   solver_order=2)


def initial_noise(shape: tuple[int, ...], seed: int, first_index: int, n: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([
        np.random.default_rng([seed, first_index + i]).standard_normal(shape, dtype=np.float32) for i in range(n)]))


@torch.inference_mode()
def sample(model: LatentDiffusion, conditions: list[Condition], *, seed: int, batch_size: int, resolution: int,
           autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> np.ndarray:
    """Images (N, resolution, resolution) float32 in [0, 1], one per condition, in order."""
    config = model.config
    scale = 2 ** (len(config.autoencoder.block_out_channels) - 1)
    latent_size = resolution // scale
    shape = (config.autoencoder.latent_channels, latent_size, latent_size)
    guidance = config.sampler.guidance_scale
    out = []
    batches = range(0, len(conditions), batch_size)
    with progress.stage("denoising", total=len(batches) * config.sampler.steps) as shown:
        for start in batches:
            batch = conditions[start:start + batch_size]
            n = len(batch)
            latents = initial_noise(shape, seed, start, n).to(model.device)
            scheduler = sampling_schedule()
            scheduler.set_timesteps(config.sampler.steps, device=model.device)
            latents = latents * scheduler.init_noise_sigma
            drop = torch.tensor([False] * n + [True] * n) if guidance != 1 else torch.zeros(n, dtype=torch.bool)
            encoded = model.encode(model.condition_inputs(batch + batch if guidance != 1 else batch, latent_size,
                                                          drop=drop))
            for t in scheduler.timesteps:
                doubled = torch.cat([latents, latents]) if guidance != 1 else latents
                doubled = scheduler.scale_model_input(doubled, t)
                with autocast():
                    noise = model.predict_noise(doubled, t.expand(len(doubled)), encoded).float()
                if guidance != 1:
                    conditional, unconditional = noise.chunk(2)
                    noise = unconditional + guidance * (conditional - unconditional)
                latents = scheduler.step(noise, t, latents).prev_sample
                shown.advance()
            decoded = model.autoencoder.decode(latents / model.autoencoder.config.scaling_factor).sample
            out.append(((decoded[:, 0].float().clamp(-1, 1) + 1) / 2).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, resolution, resolution), np.float32)

