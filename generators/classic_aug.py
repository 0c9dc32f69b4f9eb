"""The non-generative baseline: geometrically and photometrically augmented copies of real training images.

Every generator must beat this to be worth its compute. For a mask condition it applies the very
affine that made the mask to the mask's source image, so image and label stay aligned.
"""

from __future__ import annotations

import numpy as np

from cxrbench.conditions import Condition, MaskCondition
from cxrbench.generator import Generator
from cxrbench.geometry import apply_affine, random_affine
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta


class ClassicAugmentation(Generator):
    meta = GeneratorMeta(name="classic_aug", version="1", role="baseline", conditioning=["label", "mask"],
                         description="Affine (no flip) + brightness/contrast/gamma/noise copies of real training "
                                     "images.")

    def fit(self, train: SampleSet, *, seed: int, workdir) -> None:
        self._train = train
        self._row_of = {str(s): i for i, s in enumerate(train.sample_ids)}

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        rng = np.random.default_rng([seed, 505])
        return np.stack([self._one(c, rng) for c in conditions]) if conditions else \
            np.zeros((0, self.task.resolution, self.task.resolution), np.float32)

    def _one(self, condition: Condition, rng: np.random.Generator) -> np.ndarray:
        if isinstance(condition, MaskCondition):
            image = self._train.images[self._row_of[condition.source_id]]
            params = condition.transform or random_affine(rng, max_rotate_deg=0, max_scale=0, max_translate=0)
        else:
            image = self._train.images[self._closest_row(condition, rng)]
            params = random_affine(rng)
        image = apply_affine(image, params, nearest=False)
        return self._photometric(image, rng)

    def _closest_row(self, condition: Condition, rng: np.random.Generator) -> int:
        """A random training row whose labels are nearest (Hamming) to the requested ones."""
        wanted = np.array([condition.labels[name] for name in self.task.labels])
        distance = np.abs(self._train.labels - wanted).sum(axis=1)
        return int(rng.choice(np.flatnonzero(distance == distance.min())))

    @staticmethod
    def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gamma = rng.uniform(0.8, 1.25)
        contrast = rng.uniform(0.85, 1.15)
        brightness = rng.uniform(-0.05, 0.05)
        out = (np.clip(image, 0, 1) ** gamma - 0.5) * contrast + 0.5 + brightness
        out = out + rng.normal(0, 0.01, image.shape)
        return np.clip(out, 0, 1).astype(np.float32)
