"""The re-identification verifier's quality on a task's real test pairs, its training time, and the score of two
reference sets; a script, not a test (docs/fidelity.md, "Re-identification", holds its figures):

    python tests/benchmarks/reidentification_quality.py --task phantom_cls --regime full

Trains the verifier with the default settings (`VerifierSettings()`) on the regime's real training split, into a
fresh cache, timing it (CPU seconds of this process beside wall seconds); then its AUC on test pairs with the
patient bootstrap, and `reidentification` of the training images with slight noise (a memorising generator) and of
fresh patients (an honest one, embedded tasks only), each paired with its nearest training image in pixel space.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from cxrbench.cache import Cache
from cxrbench.fidelity.memorisation import nearest_training
from cxrbench.fidelity.patient_pairs import VerifierSettings
from cxrbench.fidelity.reidentification import reidentification
from cxrbench.plan import data_key
from cxrbench.registry import get_task
from cxrbench.reidentification_verifier import cached_verifier
from cxrbench.task_data import load_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="phantom_cls")
    parser.add_argument("--regime", default="full")
    parser.add_argument("--steps", type=int, default=VerifierSettings().steps)
    parser.add_argument("--batch-size", type=int, default=VerifierSettings().batch_size)
    parser.add_argument("--fresh-patients", type=int, default=300)
    args = parser.parse_args()
    task = get_task(args.task)
    splits = load_splits(args.task, None, task.meta.regimes[args.regime])
    settings = VerifierSettings(steps=args.steps, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        cpu, wall = time.process_time(), time.perf_counter()
        verifier = cached_verifier(splits.train, data_key(task, splits, None), Cache(Path(folder)), settings=settings)
        trained = {"cpu_s": round(time.process_time() - cpu, 1), "wall_s": round(time.perf_counter() - wall, 1)}

    train = splits.train.images

    def score(images: np.ndarray) -> dict:
        nearest = nearest_training(images.reshape(len(images), -1), train.reshape(len(train), -1)).index
        test = nearest_training(splits.test.images.reshape(len(splits.test), -1), train.reshape(len(train), -1)).index
        return reidentification(verifier, images, train[nearest], splits.test.images, train[test],
                                test_patient_ids=splits.test.patient_ids).model_dump()

    noisy = np.clip(train + np.random.default_rng(0).normal(scale=0.02, size=train.shape), 0, 1).astype(np.float32)
    report = {"task": args.task, "regime": args.regime, "n_training_images": len(train),
              "n_training_patients": len(np.unique(splits.train.patient_ids)), "settings": settings.model_dump(),
              "training": trained, "memorising": score(noisy)}
    if args.fresh_patients:
        report["fresh_patients"] = score(task.fresh_patients(args.fresh_patients).images)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
