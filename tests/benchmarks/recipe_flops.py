"""Achieved FLOP/s of the downstream recipes' training, as a fraction of the machine's matrix-multiply peak; a script.

    python -m tests.benchmarks.recipe_flops [--device cpu] [--steps 2] [--json OUT]   # from the repo root

For each task's recipe (the embedded suite's small CNN and UNet at 64 px, the paper suite's DenseNet-121 at
224 px and wider UNet at 256 px, each at its own batch size), a few steps of the recipe's `fit` on fabricated
images, on one thread as a cell trains, after one untimed step. FLOPs per step are counted by torch's
FlopCounterMode (matrix products and convolutions, forward and backward; what it leaves out, the element-wise
work of BatchNorm, activations and the optimiser, is not useful arithmetic here either); the peak is the fastest
2048 x 2048 fp32 matmul on the same thread (`gpu_smoke.matmul_peak`). On a CPU both are timed in the
process's CPU seconds (`time.process_time`), so that a machine shared with other jobs measures the work, not the
wait for a core; on a GPU in wall seconds. docs/gpu.md holds the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from cxrbench.determinism import deterministic_cell
from cxrbench.device import device_policy
from cxrbench.registry import get_task

from .gpu_smoke import WALL, fabricated, matmul_peak, matmul_size, measure_training, published, recipe_loss

TASKS = ("phantom_cls", "phantom_seg", "chexpert_cls", "siim_seg")


def measure(device: str, steps: int) -> dict:
    policy = device_policy(device)
    clock = WALL if policy.kind == "cuda" else time.process_time
    with deterministic_cell(0):
        peak = matmul_peak(device, torch.float32, matmul_size(policy), clock=clock)
    rows = []
    for name in TASKS:
        task = get_task(name)
        batch = task.schedule.batch_size
        images, labels, masks = fabricated(batch * 2, task.meta.resolution, len(task.meta.labels), seed=0)
        targets = labels if task.meta.kind == "classification" else masks[:, None].astype("float32")
        part = f"{name} training ({task.recipe()['model']}, {task.meta.resolution} px, batch {batch})"
        rows.append(measure_training(part, task.untrained_model, recipe_loss(task.meta.kind), images[:, None],
                                     targets, batch, steps, policy, peak, clock))
    return {"device": device, "torch": torch.__version__, "threads": 1, "clock": clock.__name__,
            "matmul_peak_flops": peak,
            "rows": [asdict(row) for row in rows]}


def table(report: dict) -> str:
    lines = [f"{report['device']}, torch {report['torch']}, one thread, {report['clock']} seconds, matmul peak "
             f"{report['matmul_peak_flops'] / 1e9:.1f} GFLOP/s (fp32)",
             f"{'recipe':<62} {'GFLOP/image':>11} {'images/s':>9} {'GFLOP/s':>8} {'of peak':>8}"]
    for row in report["rows"]:
        achieved = row["flops_per_image"] * row["images_per_s"]
        lines.append(f"{row['part']:<62} {row['flops_per_image'] / 1e9:>11.3f} {row['images_per_s']:>9.2f} "
                     f"{achieved / 1e9:>8.1f} {row['flops_fraction_of_matmul_peak']:>8.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per recipe (default 2)")
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    return published(measure(args.device, args.steps), table, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
