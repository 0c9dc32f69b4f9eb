"""A short paper-scale run on fabricated images: training and sampling throughput, peak memory, achieved FLOP/s.

    python -m tests.benchmarks.gpu_smoke --device cuda                  # paper scale (run from the repo root)
    python -m tests.benchmarks.gpu_smoke --device cpu --tiny --json out.json

Paper scale takes its recipes from the registered paper tasks (chexpert_cls: torchxrayvision's DenseNet-121 at
224 px, batch 32; siim_seg: the wider MONAI UNet at 256 px, batch 16) and the `paper` preset of the reference LDM
(256 px, 8x downsampling), and runs a few steps of each through the project's own code: the recipes' `fit` and
`predict` under `cxrbench.device`'s policy, the LDM's trainer and sampler. `--tiny` shrinks every size so the
same code runs in seconds on a CPU (tests/test_gpu_smoke.py), so the script cannot rot.

Images are fabricated (smoothed noise, masks where it is bright, random labels) and the LDM is untrained:
throughput and memory do not depend on what the pixels show or what the weights learned. Peak memory is
`torch.cuda.max_memory_allocated` per part on a GPU and the process's `ru_maxrss` (a peak so far, so it only
grows from part to part) on the CPU. FLOPs are counted by torch's FlopCounterMode over one training step
(matrix products and convolutions, forward and backward; a multiply-add is 2) and set against the measured
peak of a large matmul on the same device, threads and dtype (`matmul_peak`).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from cxrbench.conditions import LabelCondition
from cxrbench.determinism import deterministic_cell
from cxrbench.device import DevicePolicy, device_policy
from cxrbench.generators.ldm.config import PRESETS
from cxrbench.generators.ldm.context import ConditionEncoder, build_tokenizer
from cxrbench.generators.ldm.denoiser import build_denoiser, train_denoiser
from cxrbench.generators.ldm.model import LatentDiffusion
from cxrbench.generators.ldm.sampler import sample
from cxrbench.generators.ldm.training import Trainer
from cxrbench.generators.prompts import prompt_of
from cxrbench.registry import get_task
from cxrbench.tasks.downstream.training import Schedule, fit, predict


@dataclass(frozen=True)
class Scale:
    images: int
    """Fabricated training images per recipe."""
    steps: int
    """Timed training steps per model (after one untimed warm-up step)."""
    classification: dict[str, Any]
    """{"model", "resolution", "batch_size"} of the classification recipe."""
    segmentation: dict[str, Any]
    """{"channels", "resolution", "batch_size"} of the segmentation recipe."""
    ldm_preset: str
    ldm_resolution: int
    ldm_samples: int


def paper_scale() -> Scale:
    """The paper tasks' own recipes and the LDM's `paper` preset, a few steps of each."""
    cls, seg = get_task("chexpert_cls"), get_task("siim_seg")
    return Scale(images=512, steps=20,
                 classification={"model": cls.model, "resolution": cls.meta.resolution,
                                 "batch_size": cls.schedule.batch_size},
                 segmentation={"channels": tuple(seg.channels), "resolution": seg.meta.resolution,
                               "batch_size": seg.schedule.batch_size},
                 ldm_preset="paper", ldm_resolution=seg.meta.resolution, ldm_samples=64)


def tiny_scale() -> Scale:
    """Every size shrunk until a CPU runs the whole script in seconds: the test's settings."""
    return Scale(images=8, steps=2, classification={"model": "small_cnn", "resolution": 32, "batch_size": 4},
                 segmentation={"channels": (4, 8), "resolution": 32, "batch_size": 4}, ldm_preset="tiny",
                 ldm_resolution=32, ldm_samples=2)


@dataclass(frozen=True)
class Row:
    part: str
    """What ran: e.g. "classification training"."""
    images: int
    seconds: float
    images_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    """"cuda max_memory_allocated" (this part alone) or "process ru_maxrss" (the process's peak so far)."""
    flops_per_image: float | None = None
    """Training rows: FLOPs of one step over its batch size."""
    flops_fraction_of_matmul_peak: float | None = None


def fabricated(n: int, resolution: int, n_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, H, W) in [0, 1] of smoothed noise, multi-hot labels (n, L), masks where the image is bright."""
    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal((n, resolution, resolution)).astype(np.float32), (0, 3, 3))
    images = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-6)
    return images, rng.integers(0, 2, (n, n_labels)).astype(np.float32), images > 0.6


def synchronised(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


Clock = Callable[[], float]
WALL: Clock = time.perf_counter


def timed(device: str, work: Callable[[], Any], clock: Clock = WALL) -> float:
    """Seconds `work` took on `clock`: wall time by default; `time.process_time` counts only this process's CPU
    seconds, which on a shared CPU measures the work rather than the wait for a core."""
    synchronised(device)
    start = clock()
    work()
    synchronised(device)
    return clock() - start


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: str) -> tuple[int, str]:
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process ru_maxrss"


def step_flops(model: torch.nn.Module, loss_fn: Callable, inputs: np.ndarray, targets: np.ndarray,
               policy: DevicePolicy) -> int:
    """FLOPs of one training step (forward and backward) of `model` on this batch, as the recipe's `fit` runs it."""
    from torch.utils.flop_counter import FlopCounterMode

    policy.place(model).train()
    with FlopCounterMode(display=False) as counter:
        with policy.autocast():
            output = model(policy.to_device(torch.from_numpy(inputs)))
        loss_fn(output.float(), policy.to_device(torch.from_numpy(targets))).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def matmul_peak(device: str, dtype: torch.dtype, size: int, repeats: int = 5, clock: Clock = WALL) -> float:
    """FLOP/s of the fastest of `repeats` products of two `size` x `size` matrices (2 size**3 FLOPs each): the
    machine's practical ceiling for the dense work training consists of, on the current threads."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    torch.matmul(a, b)  # warm-up: kernel choice, first touch of memory
    best = min(timed(device, lambda: torch.matmul(a, b), clock) for _ in range(repeats))
    return 2 * size**3 / best


def matmul_size(policy: DevicePolicy) -> int:
    """Large enough for the device's peak: 8192 on a GPU; 2048 on a CPU thread (17 GFLOP, about half a second)."""
    return 8192 if policy.kind == "cuda" else 2048


def measure_training(part: str, build: Callable[[], torch.nn.Module], loss_fn: Callable, images: np.ndarray,
                     targets: np.ndarray, batch_size: int, steps: int, policy: DevicePolicy,
                     peak: float | None, clock: Clock = WALL) -> Row:
    """`steps` steps of the recipe's `fit` (one thread, seeded, as a cell trains) after one untimed step."""
    with deterministic_cell(0):
        model = build()
        flops = step_flops(model, loss_fn, images[:batch_size], targets[:batch_size], policy)
        fit(model, images, targets, loss_fn, Schedule(1, batch_size, 1e-3), seed=0, device=policy.device)
        reset_peak(policy.device)
        seconds = timed(policy.device, lambda: fit(model, images, targets, loss_fn, Schedule(steps, batch_size, 1e-3),
                                                   seed=1, device=policy.device), clock)
    memory, kind = peak_memory(policy.device)
    achieved = flops * steps / seconds
    return Row(part, steps * batch_size, seconds, steps * batch_size / seconds, memory, kind, flops / batch_size,
               None if peak is None else achieved / peak)


def recipe_loss(kind: str) -> Callable:
    """The loss the task kind's recipe trains with (`fit_classifier`, `fit_segmenter`)."""
    from monai.losses import DiceLoss

    return torch.nn.BCEWithLogitsLoss() if kind == "classification" else DiceLoss(sigmoid=True, batch=True)


def measure_prediction(part: str, model: torch.nn.Module, images: np.ndarray, policy: DevicePolicy) -> Row:
    reset_peak(policy.device)
    seconds = timed(policy.device, lambda: predict(model, images, device=policy.device))
    memory, kind = peak_memory(policy.device)
    return Row(part, len(images), seconds, len(images) / seconds, memory, kind)


def recipe_rows(scale: Scale, policy: DevicePolicy, peak: float | None) -> list[Row]:
    """Training and prediction throughput of both downstream recipes, built as the tasks build them."""
    from cxrbench.tasks.downstream.classifier import build_classifier
    from cxrbench.tasks.downstream.segmenter import build_segmenter

    rows = []
    cls, seg = scale.classification, scale.segmentation
    images, labels, _ = fabricated(scale.images, cls["resolution"], 5, seed=0)
    model: list[torch.nn.Module] = []

    def classifier() -> torch.nn.Module:
        model.append(build_classifier(cls["model"], labels.shape[1]))
        return model[-1]

    rows.append(measure_training(f"classification training ({cls['model']}, {cls['resolution']} px)", classifier,
                                 recipe_loss("classification"), images[:, None], labels, cls["batch_size"],
                                 scale.steps, policy, peak))
    rows.append(measure_prediction("classification prediction", model[-1], images[:, None], policy))
    images, _, masks = fabricated(scale.images, seg["resolution"], 1, seed=1)

    def segmenter() -> torch.nn.Module:
        model.append(build_segmenter(tuple(seg["channels"])))
        return model[-1]

    rows.append(measure_training(f"segmentation training (UNet {tuple(seg['channels'])}, {seg['resolution']} px)",
                                 segmenter, recipe_loss("segmentation"), images[:, None],
                                 masks[:, None].astype(np.float32), seg["batch_size"], scale.steps, policy, peak))
    rows.append(measure_prediction("segmentation prediction", model[-1], images[:, None], policy))
    return rows


def untrained_ldm(preset: str, resolution: int, conditions: list[LabelCondition], labels: list[str],
                  device: str) -> LatentDiffusion:
    """The reference LDM of `preset` as a text-conditioned fit would assemble it, with untrained weights."""
    from cxrbench.generators.ldm.autoencoder import build_autoencoder

    config = PRESETS[preset]
    tokenizer = build_tokenizer(prompt_of(c) for c in conditions)
    encoder = ConditionEncoder(len(labels), tokenizer.get_vocab_size(), config.denoiser.context_dim,
                               config.denoiser.prompt_tokens, config.denoiser.text_layers)
    latent_size = resolution // 2 ** (len(config.autoencoder.block_out_channels) - 1)
    denoiser = build_denoiser(config.denoiser, config.autoencoder.latent_channels, latent_size, False)
    return LatentDiffusion(config, labels, False, build_autoencoder(config.autoencoder), denoiser, encoder,
                           tokenizer).to(device)


def ldm_rows(scale: Scale, policy: DevicePolicy) -> list[Row]:
    """Denoiser training steps and sampling of the reference LDM (its own trainer, autocast and sampler)."""
    labels = ["atelectasis", "cardiomegaly", "consolidation", "edema", "pleural_effusion"]
    rng = np.random.default_rng(2)
    conditions = [LabelCondition(labels=dict(zip(labels, map(int, row))))
                  for row in rng.integers(0, 2, (scale.images, len(labels)))]
    model = untrained_ldm(scale.ldm_preset, scale.ldm_resolution, conditions, labels, policy.device)
    trainer = Trainer(policy.device, 0, "bf16" if policy.autocast_dtype == "bfloat16" else "no")
    config = model.config.denoiser
    size = scale.ldm_resolution // 2 ** (len(model.config.autoencoder.block_out_channels) - 1)
    latents = torch.from_numpy(rng.standard_normal((scale.images, model.config.autoencoder.latent_channels, size,
                                                    size), dtype=np.float32))
    train_denoiser(model, latents, conditions, trainer, config=config.model_copy(update={"steps": 1}))  # warm-up
    reset_peak(policy.device)
    steps = config.model_copy(update={"steps": scale.steps})
    seconds = timed(policy.device, lambda: train_denoiser(model, latents, conditions, trainer, config=steps))
    memory, kind = peak_memory(policy.device)
    rows = [Row(f"LDM denoiser training ({scale.ldm_preset} preset, {scale.ldm_resolution} px)",
                scale.steps * config.batch_size, seconds, scale.steps * config.batch_size / seconds, memory, kind)]
    batch = policy.inference_batch_size(64)
    wanted = conditions[: scale.ldm_samples]
    reset_peak(policy.device)
    seconds = timed(policy.device, lambda: sample(model, wanted, seed=0, batch_size=batch,
                                                  resolution=scale.ldm_resolution, autocast=trainer.autocast))
    memory, kind = peak_memory(policy.device)
    rows.append(Row(f"LDM sampling ({model.config.sampler.steps} steps, guidance {model.config.sampler.guidance_scale}"
                    f", batch {min(batch, len(wanted))})", len(wanted), seconds, len(wanted) / seconds, memory, kind))
    return rows


def smoke(scale: Scale, device: str) -> dict[str, Any]:
    """Every part measured on `device`: the report printed as a table and written as JSON."""
    policy = device_policy(device)
    dtype = torch.bfloat16 if policy.autocast_dtype == "bfloat16" else torch.float32
    with deterministic_cell(0):  # the matmul peak on the threads the recipes train on
        peak = matmul_peak(device, dtype, matmul_size(policy))
    rows = recipe_rows(scale, policy, peak) + ldm_rows(scale, policy)
    name = torch.cuda.get_device_name(device) if policy.kind == "cuda" else platform.processor() or platform.machine()
    return {"device": device, "device_name": name, "torch": torch.__version__, "threads": 1,
            "autocast": policy.autocast_dtype, "channels_last": policy.channels_last, "pinned": policy.pinned,
            "matmul_peak_flops": peak, "matmul_dtype": str(dtype).removeprefix("torch."), "scale": asdict(scale),
            "rows": [asdict(row) for row in rows]}


def table(report: dict[str, Any]) -> str:
    head = (f"{report['device']} ({report['device_name']}), torch {report['torch']}, autocast "
            f"{report['autocast'] or 'none'}, matmul peak {report['matmul_peak_flops'] / 1e9:,.1f} GFLOP/s "
            f"({report['matmul_dtype']})")
    lines = [head, f"{'part':<62} {'images':>7} {'s':>8} {'images/s':>9} {'peak MiB':>9} {'of peak':>8}"]
    for row in report["rows"]:
        fraction = row["flops_fraction_of_matmul_peak"]
        lines.append(f"{row['part']:<62} {row['images']:>7} {row['seconds']:>8.2f} {row['images_per_s']:>9.1f} "
                     f"{row['peak_memory_bytes'] / 2**20:>9,.0f} {'' if fraction is None else f'{fraction:.1%}':>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cpu, cuda, cuda:N or mps (default cuda)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: seconds on a CPU (what the test runs)")
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this machine has no CUDA device (try --device cpu --tiny)")
    return published(smoke(tiny_scale() if args.tiny else paper_scale(), args.device), table, args.json)


def published(report: dict[str, Any], as_table: Callable[[dict[str, Any]], str], path: Path | None) -> dict[str, Any]:
    """`report` printed as a table and, where `path` is given, written there as JSON."""
    print(as_table(report))
    if path:
        path.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
