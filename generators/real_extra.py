"""Positive control on every suite: real training images that the regime's subset leaves out.

New real patients are the most any generator could give, so a benchmark that cannot see them help
cannot see a generator help either. The images come from the task's pool (training-split patients
outside the regime's subset; never val or test), with their own labels and masks; they are matched
to the requested conditions' labels, so the arm's label mix is every other arm's.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from cxrbench.conditions import Condition, LabelCondition, MaskCondition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta


class RealExtra(Generator):
    meta = GeneratorMeta(name="real_extra", version="1", role="control", conditioning=["label", "mask"],
                         needs_pool=True,
                         description="Real training images from patients outside the regime's subset (never val "
                                     "or test), with their own labels and masks; a positive control on every suite.")

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        raise GeneratorError("real_extra makes no images: it draws real ones from the regime's pool (draw)")

    def draw(self, conditions: list[Condition], pool: SampleSet, *, seed: int) -> tuple[np.ndarray, list[Condition]]:
        """Distinct pool images in a seeded random order, each of the requested label vector while the pool has one."""
        if len(pool) < len(conditions):
            raise GeneratorError(f"real_extra on task {self.task.name}: the regime's pool holds {len(pool)} real "
                                 f"images, the arm asks for {len(conditions)} (a smaller ratio or regime fits)")
        rng = np.random.default_rng([seed, 606])
        buckets: dict[tuple[int, ...], deque[int]] = {}
        for row in rng.permutation(len(pool)).tolist():
            buckets.setdefault(tuple(pool.labels[row].tolist()), deque()).append(row)
        rows = []
        for condition in conditions:
            wanted = tuple(condition.labels[name] for name in self.task.labels)
            bucket = buckets.get(wanted) or max(buckets.values(), key=len)
            rows.append(bucket.popleft())
        return pool.images[rows].astype(np.float32, copy=False), [self._shown(pool, row) for row in rows]

    def _shown(self, pool: SampleSet, row: int) -> Condition:
        labels = {name: int(value) for name, value in zip(self.task.labels, pool.labels[row], strict=True)}
        if pool.masks is None:
            return LabelCondition(labels=labels)
        return MaskCondition(labels=labels, mask=pool.masks[row], source_id=str(pool.sample_ids[row]))
