"""Positive control: fresh images drawn from the true data generator for the requested conditions.

Only a simulated suite has a true generator, so the oracle serves the embedded suite alone; its
synthetic images are as good as new real data, the most any generator could give.

With `noise_share`, that share of its images is replaced by the `noise` control's images for the same
conditions: a generator degraded by a known amount, between the oracle (0) and noise (1). It is the
degraded generator that `cxrbench check` must catch (the smoke profile's power measurement,
tests/benchmarks/smoke_power.py) and a dose-response control.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from cxrbench.conditions import Condition
from cxrbench.errors import GeneratorError
from cxrbench.generator import Generator
from cxrbench.options import GeneratorOptions
from cxrbench.samples import SampleSet
from cxrbench.schemas import GeneratorMeta, TaskMeta

NOISE_CHOICE_STREAM = 606
"""Mixed with the seed to choose which images become noise: a stream no other generator draws from."""


class OracleOptions(GeneratorOptions):
    noise_share: float = Field(default=0.0, ge=0, le=1, description="Share of the images (chosen per seed) replaced "
                               "by the noise control's images for their conditions; 0: the plain oracle.")


class Oracle(Generator):
    meta = GeneratorMeta(name="oracle", version="2", role="control", conditioning=["label", "mask"],
                         suites=["embedded"],
                         description="New phantoms from the embedded suite's own renderer; a positive control.")
    Options = OracleOptions

    def __init__(self, task: TaskMeta, **config) -> None:
        super().__init__(task, **config)
        from cxrbench.registry import generator_class, get_task

        self._simulator = get_task(task.name)
        if task.suite != "embedded":
            raise GeneratorError(f"oracle needs the task's true generator; task {task.name} is not simulated")
        self._noise = generator_class("noise")(task) if self.options.noise_share else None

    def fit(self, train: SampleSet, *, seed: int, workdir: Path) -> None:
        if self._noise is not None:
            self._noise.fit(train, seed=seed, workdir=workdir)

    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        images = np.array(self._simulator.simulate(conditions, seed=seed), dtype=np.float32)
        count = int(round(self.options.noise_share * len(conditions)))
        if self._noise is not None and count:
            rng = np.random.default_rng([seed, NOISE_CHOICE_STREAM])
            chosen = np.sort(rng.choice(len(conditions), size=count, replace=False))
            images[chosen] = self._noise.generate([conditions[i] for i in chosen], seed=seed)
        return images
