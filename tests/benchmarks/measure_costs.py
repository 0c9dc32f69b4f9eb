"""Measure what `cxrbench plan` estimates from and write the table (benchmark/costs.json); a script, not a test.

    nice -n 15 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python tests/benchmarks/measure_costs.py [PART ...] [--data-root ../shared/data] [--note "shared with ..."]

PART (default: all of them):
- cells: one real_only cell (seed 0) per embedded and open task and regime: the task's data loaded first, then
  `Task.train_and_predict` timed, as a worker computes a cell whose data is in memory;
- steps: every task's recipe network at its resolution on fabricated tensors: a few training steps of the recipe's
  batch size (after one untimed step) and one inference batch, per image; what the paper suite's cells are priced
  from, since a whole cell of theirs cannot run on a CPU in minutes;
- sampling: per image, the synthetic set of each cheap generator (classic_aug, noise, real_extra, oracle) on each
  embedded and open task's scarce regime, through the run's own `synthetic_set`;
- paper_sampling: the same per image for classic_aug and noise on the paper suite's tasks, on fabricated training
  images at the task's resolution;
- datasets: the paper suite's nominal split sizes, from the metadata tables torchxrayvision ships (the datasets'
  real CSVs), split by the protocol's patient hash where the table names patients.

Each entry replaces the one of the same identity measured before; the rest of the table stays. CPU seconds are the
process's (user + system), so a machine shared with other jobs slows the wall time more than them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np

from cxrbench.cost import TABLE, CostTable
from cxrbench.registry import get_task, suite_tasks

LOCAL_SUITES = ("embedded", "open")
CHEAP_GENERATORS = ("classic_aug", "noise", "real_extra", "oracle")
REPEATS = 3
PAPER_SET = 64
"""Synthetic images per paper-suite measurement: enough to average, few enough for seconds."""
CANDID_IMAGES = 19_237
"""CANDID-PTX's size as its paper states it (Feng et al. 2021: "a dataset of 19 237 chest radiographs")."""


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import os

    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} thread)"


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """CPU seconds of this process (user + system) and wall seconds of the block."""
    found: dict[str, float] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    yield found
    found["cpu_seconds"], found["wall_seconds"] = time.process_time() - cpu, time.perf_counter() - wall


def provenance(command: str, note: str) -> dict[str, str]:
    where = f"{machine()}; {note}" if note else machine()
    return {"command": command, "machine": where, "date": date.today().isoformat()}


def local_tasks() -> list[str]:
    return [name for suite in LOCAL_SUITES for name in suite_tasks(suite)]


def measure_cells(data_root: Path | None, note: str) -> list[dict]:
    entries = []
    for name in local_tasks():
        task = get_task(name)
        for regime, size in task.meta.regimes.items():
            splits = task.load(data_root if task.folder else None, train_size=size)
            with timed() as took:
                task.train_and_predict(splits.train, splits, seed=0, device="cpu")
            entries.append({"task": name, "regime": regime, "device": "cpu", **took,
                            "what": f"one real_only cell, seed 0: Task.train_and_predict on {len(splits.train)} "
                                    f"training images, {len(splits.val)} val, {len(splits.test)} test (data loaded "
                                    f"before)", **provenance("measure_costs.py cells", note)})
            print(json.dumps(entries[-1]), flush=True)
    return entries


def measure_steps(note: str) -> list[dict]:
    import torch
    from monai.losses import DiceLoss

    from cxrbench.tasks.downstream.training import Schedule, fit, predict

    entries = []
    for name in [*local_tasks(), *suite_tasks("paper")]:
        task = get_task(name)
        schedule = task.recipe()["schedule"]
        size, batch = task.meta.resolution, schedule["batch_size"]
        segmentation = task.meta.kind == "segmentation"
        loss: Callable = DiceLoss(sigmoid=True, batch=True) if segmentation else torch.nn.BCEWithLogitsLoss()
        rng = np.random.default_rng(0)
        images = rng.random((batch, 1, size, size), dtype=np.float32)
        targets = (rng.random((batch, 1, size, size)) > 0.9 if segmentation
                   else rng.random((batch, len(task.meta.labels))) > 0.5).astype(np.float32)
        model = task.untrained_model()

        def train(steps: int, model=model, images=images, targets=targets, loss=loss, batch=batch) -> None:
            fit(model, images, targets, loss, Schedule(steps=steps, batch_size=batch, learning_rate=1e-3), seed=0,
                device="cpu")

        train(1)  # allocation and first-call costs, which a cell of thousands of steps does not pay per step
        steps = []
        for _ in range(REPEATS):  # the fastest of a few: what other jobs on the machine disturbed least
            with timed() as took:
                train(1)
            steps.append(took["cpu_seconds"])
        with timed() as inference:
            predict(model, images, device="cpu", batch_size=batch)
        entries.append({"task": name, "device": "cpu", "train_seconds_per_image": min(steps) / batch,
                        "infer_seconds_per_image": inference["cpu_seconds"] / batch,
                        "what": f"{task.recipe()['model']} at {size} px, fabricated tensors: the fastest of "
                                f"{REPEATS} training steps of {batch} images (after one untimed step; the slowest took "
                                f"{max(steps) / min(steps):.2f}x as long) and one inference batch of {batch}, CPU "
                                f"seconds per image", **provenance("measure_costs.py steps", note)})
        print(json.dumps(entries[-1]), flush=True)
    return entries


def measure_sampling(data_root: Path | None, note: str) -> list[dict]:
    from cxrbench.cache import Cache
    from cxrbench.cell import synthetic_set
    from cxrbench.plan import plan_task
    from cxrbench.protocol import incompatibility
    from cxrbench.registry import generator_class
    from cxrbench.schemas import RunConfig

    entries = []
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache(Path(folder))
        for name in local_tasks():
            task = get_task(name)
            regime, size = next(iter(task.meta.regimes.items()))
            usable = [g for g in CHEAP_GENERATORS if incompatibility(generator_class(g).meta, task.meta) is None]
            config = RunConfig(tasks=[name], generators=usable, regimes=[regime], seeds=2,
                               data_root=data_root if task.folder else None)
            plan = plan_task(name, regime, size, config, cache.root)
            for arm in plan.arms:
                cell, first = arm.cells[1], arm.cells[0]
                synthetic_set(first, cache, plan.splits)  # untimed: the first call's imports and allocations
                with timed() as took:
                    synthetic_set(cell, cache, plan.splits)
                entries.append({"generator": arm.generator, "task": name, "device": "cpu",
                                "cpu_seconds_per_image": took["cpu_seconds"] / cell.n_synthetic,
                                "what": f"the synthetic set of one cell ({cell.n_synthetic} images, regime {regime}, "
                                        f"seed 1, after seed 0's untimed), made and written to the cache", **provenance(
                                            "measure_costs.py sampling", note)})
                print(json.dumps(entries[-1]), flush=True)
    return entries


def measure_paper_sampling(note: str) -> list[dict]:
    """The cheap generators on the paper suite's tasks, on fabricated training images of the task's resolution
    (their cost does not depend on what the pixels show): conditions drawn as a run draws them, the images made
    (`checked_generate`) and written as a synthetic set."""
    from cxrbench.protocol import incompatibility
    from cxrbench.registry import generator_class
    from cxrbench.samples import SampleSet
    from cxrbench.synthetic import write_synthetic_set

    entries = []
    rng = np.random.default_rng(0)
    for name in suite_tasks("paper"):
        task = get_task(name)
        size, labels = task.meta.resolution, len(task.meta.labels)
        masks = rng.random((PAPER_SET, size, size)) > 0.95 if task.meta.kind == "segmentation" else None
        train = SampleSet(rng.random((PAPER_SET, size, size), dtype=np.float32),
                          (rng.random((PAPER_SET, labels)) > 0.7).astype(np.int8), masks,
                          np.array([f"p{i}" for i in range(PAPER_SET)]), np.array([f"s{i}" for i in range(PAPER_SET)]))
        for generator_name in ("classic_aug", "noise"):
            cls = generator_class(generator_name)
            if incompatibility(cls.meta, task.meta):
                continue
            with tempfile.TemporaryDirectory() as folder:
                generator = cls(task.meta)
                generator.fit(train, seed=0, workdir=Path(folder))
                generator.checked_generate(task.conditions(train, 4, seed=1), seed=1, regime="scarce")  # first call
                with timed() as took:
                    conditions = task.conditions(train, PAPER_SET, seed=0)
                    images = generator.checked_generate(conditions, seed=0, regime="scarce")
                    write_synthetic_set(Path(folder) / "set", images, conditions, generator=generator_name,
                                        revision=generator.revision(), task=name, seed=0)
            entries.append({"generator": generator_name, "task": name, "device": "cpu",
                            "cpu_seconds_per_image": took["cpu_seconds"] / PAPER_SET,
                            "what": f"{PAPER_SET} images at {size} px from {PAPER_SET} fabricated training images "
                                    f"(after 4 untimed): conditions drawn, images made and written as a synthetic set",
                            **provenance("measure_costs.py paper_sampling", note)})
            print(json.dumps(entries[-1]), flush=True)
    return entries


def _xrv_table(name: str) -> Path:
    import torchxrayvision

    return Path(torchxrayvision.__file__).parent / "data" / name


def measure_datasets(note: str) -> list[dict]:
    """Nominal split sizes of the paper suite: counted in the datasets' own metadata where torchxrayvision ships it."""
    import pandas as pd

    from cxrbench.tasks.splits import split_indices

    def by_patient(patients: list[str]) -> dict[str, int]:
        return {name: len(rows) for name, rows in split_indices(patients).items()}

    def expected(n: int) -> dict[str, int]:  # patients unknown: the rule's fractions (0.6, 0.15, 0.25)
        return {"train": round(0.6 * n), "val": round(0.15 * n), "test": n - round(0.6 * n) - round(0.15 * n)}

    chexpert = pd.read_csv(_xrv_table("chexpert_train.csv.gz"), usecols=["Path", "Frontal/Lateral"])
    frontal = chexpert[chexpert["Frontal/Lateral"] == "Frontal"]["Path"].str.extract(r"(patient\d+)", expand=False)
    rsna = pd.read_csv(_xrv_table("kaggle_stage_2_train_labels.csv.zip"), usecols=["patientId"])["patientId"].unique()
    with gzip.open(_xrv_table("siim-pneumothorax-train-rle.csv.gz"), "rt") as handle:
        siim = pd.read_csv(handle, usecols=[0]).iloc[:, 0].str.strip().unique()
    found = {
        "chexpert_cls": (by_patient(frontal.tolist()), f"{len(frontal):,} frontal rows of torchxrayvision's "
                         f"chexpert_train.csv.gz (CheXpert train.csv), split by patient; valid.csv (234 images) is "
                         f"not in it"),
        "rsna_cls": (by_patient(rsna.tolist()), f"{len(rsna):,} patientIds of torchxrayvision's "
                     f"kaggle_stage_2_train_labels.csv.zip, one image each, split by patient"),
        "siim_seg": (expected(len(siim)), f"{len(siim):,} ImageIds of torchxrayvision's "
                     f"siim-pneumothorax-train-rle.csv.gz; the patients are in the DICOM headers, so the split "
                     f"rule's fractions"),
        "candid_seg": (expected(CANDID_IMAGES), f"{CANDID_IMAGES:,} radiographs, the count Feng et al. publish "
                       f"(Radiology: AI 2021, doi:10.1148/ryai.2021210136; no metadata table here), so the split "
                       f"rule's fractions"),
    }
    return [{"task": name, **sizes, "source": source, **provenance("measure_costs.py datasets", note)}
            for name, (sizes, source) in found.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["datasets", "steps", "sampling", "paper_sampling", "cells"])
    parser.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--note", default="", help="What else the machine was doing.")
    parser.add_argument("--out", type=Path, default=TABLE)
    args = parser.parse_args()
    measures = {"datasets": lambda: measure_datasets(args.note), "steps": lambda: measure_steps(args.note),
                "sampling": lambda: measure_sampling(args.data_root, args.note),
                "paper_sampling": lambda: measure_paper_sampling(args.note),
                "cells": lambda: measure_cells(args.data_root, args.note)}
    for part in args.parts:
        entries = measures[part]()
        table = CostTable.read(args.out) if args.out.exists() else CostTable()  # read now: another refresh may write
        table.replaced("sampling" if part == "paper_sampling" else part, entries).write(args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
