"""Sampling throughput of the project's sampler against a plain diffusers denoising loop, same weights.

The plain loop is the one diffusers' text-to-image pipelines run (condition encoded once, guidance by
doubling the batch, scheduler.step, decode); it is written out here only as the reference to beat.
Weights are an untrained `cpu` preset model: speed does not depend on what the weights learned.
Run: python -m pytest tests/benchmarks/test_sampler_speed.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrbench.generators.ldm.autoencoder import build_autoencoder
from cxrbench.generators.ldm.config import PRESETS
from cxrbench.generators.ldm.context import ConditionEncoder, build_tokenizer
from cxrbench.generators.ldm.denoiser import build_denoiser
from cxrbench.generators.ldm.model import LatentDiffusion
from cxrbench.generators.ldm.sampler import initial_noise, sample, sampling_schedule
from cxrbench.generators.prompts import prompt_for
from cxrbench.registry import get_task

BATCH = 16


@pytest.fixture(scope="module")
def model_and_conditions():
    task = get_task("phantom_cls")
    config = PRESETS["cpu"]
    torch.manual_seed(0)
    splits = task.load(None, train_size=BATCH)
    conditions = task.conditions(splits.train, BATCH, seed=0)
    tokenizer = build_tokenizer(prompt_for(c.labels) for c in conditions)
    encoder = ConditionEncoder(len(task.meta.labels), tokenizer.get_vocab_size(), config.denoiser.context_dim,
                               config.denoiser.prompt_tokens, config.denoiser.text_layers)
    model = LatentDiffusion(config, list(task.meta.labels), False, build_autoencoder(config.autoencoder).eval(),
                            build_denoiser(config.denoiser, 4, 16, False).eval(), encoder.eval(), tokenizer)
    return model, conditions, task.meta.resolution


@torch.inference_mode()
def plain_loop(model: LatentDiffusion, conditions, seed: int, resolution: int) -> np.ndarray:
    scheduler = sampling_schedule()
    scheduler.set_timesteps(model.config.sampler.steps)
    n, guidance = len(conditions), model.config.sampler.guidance_scale
    latents = initial_noise((4, resolution // 4, resolution // 4), seed, 0, n) * scheduler.init_noise_sigma
    drop = torch.tensor([False] * n + [True] * n)
    encoded = model.encode(model.condition_inputs(conditions + conditions, resolution // 4, drop=drop))
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        conditional, unconditional = model.predict_noise(model_input, t.expand(2 * n), encoded).chunk(2)
        latents = scheduler.step(unconditional + guidance * (conditional - unconditional), t, latents).prev_sample
    images = model.autoencoder.decode(latents / model.autoencoder.config.scaling_factor).sample
    return ((images[:, 0].clamp(-1, 1) + 1) / 2).numpy()


def test_project_sampler(benchmark, model_and_conditions):
    model, conditions, resolution = model_and_conditions
    images = benchmark(sample, model, conditions, seed=0, batch_size=BATCH, resolution=resolution)
    np.testing.assert_allclose(images, plain_loop(model, conditions, 0, resolution), atol=1e-4)
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats["mean"] if benchmark.stats else None


def test_plain_diffusers_loop(benchmark, model_and_conditions):
    model, conditions, resolution = model_and_conditions
    benchmark(plain_loop, model, conditions, 0, resolution)
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats["mean"] if benchmark.stats else None
