"""Positive control: fresh images drawn from the true data generator for the requested conditions.

Only a simulated suite has a true generator, so the oracle serves the embedded suite alone; its
synthetic images are as good as new real data, the most any generator could give.
"""

from __future__ import annotations

import numpy as np

from cxrbench.conditions import Condition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.schemas import GeneratorMeta, TaskMeta


class Oracle(Generator):
    meta = GeneratorMeta(name="oracle", version="2", role="control", conditioning=["label", "mask"],
                         suites=["embedded"],
                         description="New phantoms from the embedded suite's own renderer; a positive control.")

    def __init__(self, task: TaskMeta, **config) -> None:
        super().__init__(task, **config)
        from cxrbench.registry import get_task

        self._simulator = get_task(task.name)
        if task.suite != "embedded":
            raise GeneratorError(f"oracle needs the task's true generator; task {task.name} is not simulated")

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        return self._simulator.simulate(conditions, seed=seed)
