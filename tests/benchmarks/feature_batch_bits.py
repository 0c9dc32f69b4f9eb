"""How much the batch size changes the features; a script, not a test (docs/fidelity.md, "Feature extractors"):

    python tests/benchmarks/feature_batch_bits.py

The largest absolute difference between features embedded at two batch sizes, over the largest feature magnitude:
the in-domain encoder of phantom_cls (its recipe cut to 20 steps), 128 test images at 64 and at 7 a batch; a randomly
initialised torchxrayvision DenseNet, 16 test images at 16 and at 3 a batch.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cxrbench.cache import Cache
from cxrbench.feature_extractors import extractor_from_spec
from cxrbench.registry import get_task
from cxrbench.task_data import load_splits


def relative_change(extractor, images: np.ndarray, sizes: tuple[int, int]) -> float:
    first, second = (extractor.embed(images, batch_size=size) for size in sizes)
    return float(np.abs(first - second).max() / np.abs(first).max())


def main() -> None:
    import torchxrayvision as xrv

    task = get_task("phantom_cls")
    type(task).schedule = replace(task.schedule, steps=20)
    splits = load_splits("phantom_cls", None, 60)
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache(Path(folder) / "cache")
        encoder = extractor_from_spec("in_domain", task=task, real=splits, data_key="batch-bits", cache=cache,
                                      device="cpu")
        torch.manual_seed(0)
        weights = Path(folder) / "densenet.pt"
        torch.save(xrv.models.DenseNet(weights=None).state_dict(), weights)
        densenet = extractor_from_spec(f"xrv:{weights}", task=task, real=splits, data_key="", cache=cache,
                                       device="cpu")
        print(json.dumps({"in_domain 64 vs 7": relative_change(encoder, splits.test.images[:128], (64, 7)),
                          "xrv_densenet 16 vs 3": relative_change(densenet, splits.test.images[:16], (16, 3))}))


if __name__ == "__main__":
    main()
