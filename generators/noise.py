"""Negative control: smooth noise images carrying the requested labels or masks.

They have the training images' mean and contrast but no anatomy or finding, so a benchmark that
reports a gain for them is inventing one.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from cxrbench.conditions import Condition
from cxrbench.generator import Generator
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta


class Noise(Generator):
    meta = GeneratorMeta(name="noise", version="1", role="control", conditioning=["label", "text", "mask"],
                         description="Smoothed Gaussian noise with the training images' mean and std; a negative "
                                     "control.")

    def fit(self, train: SampleSet, *, seed: int, workdir) -> None:
        self._mean = float(train.images.mean())
        self._std = float(train.images.std())

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        size = self.task.resolution
        rng = np.random.default_rng([seed, 404])
        noise = gaussian_filter(rng.standard_normal((len(conditions), size, size)), sigma=(0, 1.5, 1.5))
        noise /= max(float(noise.std()), 1e-8)
        return np.clip(self._mean + self._std * noise, 0.0, 1.0).astype(np.float32)
