"""The baseline arm: no synthetic data at all; every other arm is compared with it."""

from __future__ import annotations

import numpy as np

from cxrbench.conditions import Condition
from cxrbench.generator import Generator
from cxrbench.schemas import GeneratorMeta


class RealOnly(Generator):
    meta = GeneratorMeta(name="real_only", version="1", role="baseline", conditioning=[],
                         description="Real training data only: the reference every arm is compared with.")

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        size = self.task.resolution
        if conditions:
            raise ValueError("real_only makes no synthetic images")
        return np.zeros((0, size, size), np.float32)
