"""Mixup of pairs of real training images that carry the very labels asked for.

Plain mixup also mixes the labels; a cxrbench condition asks for hard 0/1 labels, so both images of a
pair are drawn from the training rows with the requested label vector (or, when no row has it, the
nearest ones by Hamming distance), and the mixed image keeps that label exactly.

Label conditioning only: a mask condition asks for a finding inside one given mask, and the mix of
two images with different masks shows a finding in neither mask exactly, so its segmentation label
would be wrong wherever the masks differ. The generator is therefore skipped on segmentation tasks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from cxrbench.conditions import Condition
from cxrbench.generator import Generator
from cxrbench.options import GeneratorOptions
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta

STATE_FILE = "mixup.npz"


class MixupOptions(GeneratorOptions):
    alpha: float = Field(0.4, gt=0, le=10, description="Beta(alpha, alpha) draws each pair's mixing weight.")


class Mixup(Generator):
    meta = GeneratorMeta(
        name="mixup", version="1", role="generator", conditioning=["label"],
        description="Mixup of two real training images with the requested labels (Beta(alpha, alpha) weight).",
        # Nothing learnt before the run: all it uses is the regime's training split, handed to `fit`.
        trained_on=[], licence="Apache-2.0")
    trainable = True
    Options = MixupOptions
    options: MixupOptions

    def fit(self, train: SampleSet, *, seed: int, workdir: Path) -> None:
        """Keep the training images and labels: mixup needs nothing else."""
        self._images = train.images.astype(np.float32)
        self._labels = train.labels.astype(np.int8)

    def save(self, directory: Path) -> None:
        np.savez_compressed(Path(directory) / STATE_FILE, images=self._images, labels=self._labels)

    def load(self, directory: Path) -> None:
        with np.load(Path(directory) / STATE_FILE) as state:
            self._images, self._labels = state["images"], state["labels"]

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        size = self.task.resolution
        rng = np.random.default_rng([seed, 0x6D69])  # this generator's own stream; the seed alone decides it
        out = np.empty((len(conditions), size, size), np.float32)
        for i, condition in enumerate(conditions):
            first, second = rng.choice(self._rows_like(condition), size=2)
            weight = rng.beta(self.options.alpha, self.options.alpha)
            out[i] = weight * self._images[first] + (1 - weight) * self._images[second]
        return np.clip(out, 0, 1)

    def _rows_like(self, condition: Condition) -> np.ndarray:
        """The training rows with the condition's labels (nearest by Hamming distance when none has them)."""
        wanted = np.array([condition.labels[name] for name in self.task.labels])
        distance = np.abs(self._labels - wanted).sum(axis=1)
        return np.flatnonzero(distance == distance.min())
