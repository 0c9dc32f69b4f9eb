"""Downstream training from the pixel map against the same steps on images already in memory (issue 20: within
1.2x). Not part of the test run; run it on purpose:

    python tests/benchmarks/pixel_map_training.py --rows 600 --work /tmp/pixel-map-training

It loads `chexpert_cls` (224 px) from a fabricated copy (tests/fake_chexpert.py: CheXpert's train.csv rows with
generated JPEGs) through the cache, so the training split is a read-only memory map, and trains the recipe's
classifier (`fit_classifier`: the steps, then the BatchNorm pass over every training image) from three sources,
interleaved round by round: `memory` (the split copied into an in-memory array first, not timed), `map` (the map,
its pages in the page cache after the first round), `map-cold` (the map with its pages dropped from the page
cache before each round, `posix_fadvise(DONTNEED)`, so every batch is read from disk) and `stacked` (a synthetic
arm's rows as `SampleSet.concat` gives them: the map's first half stacked with the second half in memory,
`StackedRows`). Each source must give the same weights bit for bit; it prints each source's fastest round and its
ratio to `memory`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def drop_from_page_cache(path: str) -> None:
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600, help="rows of CheXpert's train.csv in the copy")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--model", choices=["small_cnn", "xrv_densenet"], default="small_cnn")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from cxrbench.stacked_rows import StackedRows
    from cxrbench.tasks.downstream.classifier import fit_classifier
    from cxrbench.tasks.downstream.training import Schedule
    from cxrbench.tasks.real.paper_suite import ChexpertClassification
    from tests.fake_chexpert import fake_chexpert

    root = args.work / f"rows-{args.rows}"
    if not (root / "written").exists():
        fake_chexpert(root, args.rows)
        (root / "written").write_text("")
    train = ChexpertClassification().load(root, cache_dir=root / "cache").train
    half = len(train) // 2
    sources = {"memory": np.array(train.images), "map": train.images, "map-cold": train.images,
               "stacked": StackedRows([train.images[:half], np.array(train.images[half:])])}
    schedule = Schedule(steps=args.steps, batch_size=args.batch_size, learning_rate=1e-3, weight_decay=1e-4)
    print(f"{len(train)} training images {train.images.shape[1:]} ({train.images.nbytes / 2**20:.0f} MiB), "
          f"{args.model}, {args.steps} steps of {args.batch_size} + the BatchNorm pass, {args.rounds} rounds")
    seconds: dict[str, list[float]] = {name: [] for name in sources}
    weights: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, images in sources.items():
            if name == "map-cold":
                drop_from_page_cache(train.images.filename)
            start = time.perf_counter()
            net = fit_classifier(images, train.labels, model=args.model, schedule=schedule, seed=0, device="cpu",
                                 real_rows=np.arange(len(train)))
            seconds[name].append(time.perf_counter() - start)
            state = [value.clone() for value in net.state_dict().values()]
            first = weights.setdefault("memory", state)
            if not all(a.equal(b) for a, b in zip(first, state, strict=True)):
                raise SystemExit(f"{name}: the weights differ from training in memory")
    best = {name: min(values) for name, values in seconds.items()}
    for name, value in best.items():
        print(f"{name:>9}: {value:7.2f} s (rounds {', '.join(f'{s:.2f}' for s in seconds[name])}), "
              f"{value / best['memory']:.3f}x memory")


if __name__ == "__main__":
    main()
