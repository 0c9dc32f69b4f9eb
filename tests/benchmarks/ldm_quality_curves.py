"""Quality curves of the reference LDM at CPU scale (issue 18): what the `cpu` preset's widths and steps buy.
Not part of the test run (minutes per point); run it on purpose:

    python tests/benchmarks/ldm_quality_curves.py autoencoder --task phantom_seg --out curves-ae.json
    python tests/benchmarks/ldm_quality_curves.py denoiser --task phantom_cls --out curves-cls.json

`autoencoder`: for each width and number of steps, an autoencoder trained on the task's pretraining pool, its
reconstruction quality (PSNR and SSIM, MONAI's metrics, data range 1) on the task's real test split (held out: other
patients, and the task's own scanner rather than the pool's), and its training time. One run per point: the
autoencoder's cosine schedule depends on the total.

`denoiser`: one autoencoder (the `cpu` preset's, or --ae-* settings), then one denoiser trained on the pool's
latents, graded at each checkpoint (the EMA weights a run of exactly that many steps would save: the learning rate is
constant after warm-up): samples for conditions drawn from the real training split as a run draws them, graded by
the agreement judge (the task's recipe trained on the whole real training split) against the requested conditions
(matched) and against the requests shuffled among the images (shuffled); the judge's score on real test images is the
ceiling. Saves a sample grid per checkpoint next to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def parse_widths(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(","))


def task_data(name: str):
    from cxrbench.registry import get_task

    task = get_task(name)
    splits = task.load(None, train_size=None)
    pool = task.pretraining_pool(None, train_size=task.meta.regimes["scarce"])
    return task, splits, pool


def reconstruction_quality(vae, images: np.ndarray) -> dict[str, float]:
    from monai.metrics import PSNRMetric, SSIMMetric

    from cxrbench.generators.ldm.model import model_range

    x = model_range(images)
    with torch.no_grad():
        out = torch.cat([vae.decode(vae.encode(chunk).latent_dist.mode()).sample for chunk in x.split(64)])
    real, rebuilt = (x + 1) / 2, ((out.clamp(-1, 1) + 1) / 2)
    psnr = PSNRMetric(max_val=1.0)(rebuilt, real)
    ssim = SSIMMetric(spatial_dims=2, data_range=1.0)(rebuilt, real)
    return {"psnr": float(psnr.mean()), "ssim": float(ssim.mean())}


def save_grid(rows: list[np.ndarray], path: Path) -> None:
    """Rows of images (each (n, H, W) in [0, 1]) as one PNG."""
    from PIL import Image

    grid = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
    Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8)).save(path)


def autoencoder_curves(args: argparse.Namespace) -> dict:
    from cxrbench.generators.ldm.autoencoder import train_autoencoder
    from cxrbench.generators.ldm.config import AutoencoderConfig
    from cxrbench.generators.ldm.model import model_range
    from cxrbench.generators.ldm.training import Trainer

    task, splits, pool = task_data(args.task)
    test = splits.test.images
    points = []
    for widths in args.widths:
        for steps in args.steps:
            config = AutoencoderConfig(block_out_channels=widths, mid_block_attention=False, steps=steps,
                                       batch_size=args.batch_size, learning_rate=args.learning_rate)
            started = time.perf_counter()
            vae = train_autoencoder(model_range(pool.images), config, Trainer("cpu", 0))
            seconds = time.perf_counter() - started
            quality = reconstruction_quality(vae, test)
            points.append({"widths": list(widths), "steps": steps, "seconds": round(seconds, 1), **quality})
            print(json.dumps(points[-1]), flush=True)
            with torch.no_grad():
                shown = model_range(test[:8])
                rebuilt = vae.decode(vae.encode(shown).latent_dist.mode()).sample.clamp(-1, 1)
            save_grid([test[:8], ((rebuilt[:, 0] + 1) / 2).numpy()],
                      args.out.with_name(f"{args.out.stem}-{'x'.join(map(str, widths))}-{steps}.png"))
    return {"task": args.task, "pool_images": len(pool), "test_images": len(test), "points": points}


def denoiser_curves(args: argparse.Namespace) -> dict:
    from cxrbench.agreement import Grader, real_test_score
    from cxrbench.generators.ldm.config import resolve_config
    from cxrbench.generators.ldm.denoiser import train_denoiser
    from cxrbench.generators.ldm.generator import MaskConditionedLDM, TextConditionedLDM, untrained_denoising
    from cxrbench.generators.ldm.sampler import sample
    from cxrbench.generators.ldm.training import Trainer
    from cxrbench.protocol import JUDGE_SEED
    from cxrbench.synthetic import training_rows, write_grid

    task, splits, pool = task_data(args.task)
    generator = MaskConditionedLDM if task.meta.kind == "segmentation" else TextConditionedLDM
    overrides = {"preset": "cpu", "denoiser": {"steps": max(args.checkpoints)}}
    if args.ae_widths:
        overrides["autoencoder"] = {"block_out_channels": list(args.ae_widths), "steps": args.ae_steps}
    if args.denoiser_widths:
        overrides["denoiser"]["block_out_channels"] = list(args.denoiser_widths)
    settings = resolve_config(generator.Options(**overrides), task.meta.resolution)
    trainer = Trainer("cpu", 0)
    started = time.perf_counter()
    model, latents, conditions = untrained_denoising(settings, task.meta, pool, trainer,
                                                     uses_mask=generator.uses_mask)
    autoencoder_seconds = time.perf_counter() - started
    judge = task.train_model(splits.train, seed=JUDGE_SEED, device="cpu")
    ceiling = real_test_score(task, judge, splits, device="cpu")
    requests = task.conditions(splits.train, args.images, seed=0)
    points = []
    clock = {"started": time.perf_counter()}

    def grade(steps: int) -> None:
        trained_for = time.perf_counter() - clock["started"]
        images = sample(model, requests, seed=0, batch_size=64, resolution=task.meta.resolution)
        ids = np.array([f"synthetic-{i}" for i in range(len(images))])
        synthetic = training_rows(images, requests, task.meta.labels, ids)
        grader = Grader(task, judge, splits, synthetic, device="cpu")
        matched, per_label = grader.matched()
        shuffled, _ = grader.shuffled(0)
        points.append({"steps": steps, "train_seconds": round(trained_for, 1), "matched": matched,
                       "shuffled": shuffled, "matched_per_label": per_label})
        print(json.dumps(points[-1]), flush=True)
        write_grid(args.out.with_name(f"{args.out.stem}-{steps}.png"), images, requests)
        clock["started"] = time.perf_counter() - trained_for

    checkpoints = {k: (lambda k=k: grade(k)) for k in args.checkpoints}
    train_denoiser(model, latents, conditions, trainer, checkpoints=checkpoints)
    return {"task": args.task, "pool_images": len(pool), "images": args.images, "judge_real_test": ceiling,
            "autoencoder": settings.autoencoder.model_dump(mode="json"),
            "autoencoder_seconds": round(autoencoder_seconds, 1),
            "denoiser": settings.denoiser.model_dump(mode="json"), "points": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["autoencoder", "denoiser"])
    parser.add_argument("--task", default="phantom_seg")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--widths", type=parse_widths, nargs="+", default=[(16, 32, 32), (32, 64, 64)])
    parser.add_argument("--steps", type=int, nargs="+", default=[400, 1000, 2000])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--ae-widths", type=parse_widths)
    parser.add_argument("--ae-steps", type=int, default=400)
    parser.add_argument("--denoiser-widths", type=parse_widths)
    args = parser.parse_args()
    torch.manual_seed(0)
    result = autoencoder_curves(args) if args.part == "autoencoder" else denoiser_curves(args)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
