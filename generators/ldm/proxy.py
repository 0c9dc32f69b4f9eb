"""The proxy: the task's own downstream model, trained on the real training split only, grading synthetic images.

It scores each image against the condition it was made for, as the task defines it
(`Task.condition_scores`). Its seed differs from the agreement judge's and from every run seed, so
a filter built on it is never graded by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrbench.conditions import Condition
from cxrbench.errors import GeneratorError
from cxrbench.protocol import PROXY_SEED
from cxrbench.samples import SampleSet
from cxrbench.task import DownstreamModel, Task


@dataclass
class Proxy:
    task: Task
    model: DownstreamModel
    trained_on: list[str]
    """Sample ids of the real images it learnt from: the training split, checked by the leakage test."""

    def scores(self, images: np.ndarray, conditions: list[Condition], *, device: str) -> np.ndarray:
        """One score in [0, 1] per image: how well it shows the condition it was asked for."""
        return self.task.condition_scores(self.model, images, conditions, device=device)

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, directory / "proxy.safetensors")
        (directory / "proxy.json").write_text(json.dumps({"task": self.task.meta.name, "trained_on": self.trained_on}))

    @classmethod
    def load(cls, directory: Path) -> Proxy:
        from safetensors.torch import load_file

        from cxrbench.registry import get_task

        if not (directory / "proxy.json").is_file():
            raise GeneratorError(f"{directory} holds no saved proxy (proxy.json missing)")
        meta = json.loads((directory / "proxy.json").read_text())
        task = get_task(meta["task"])
        model = task.untrained_model()
        model.load_state_dict(load_file(directory / "proxy.safetensors"))
        return cls(task=task, model=model, trained_on=meta["trained_on"])


def train_proxy(task_name: str, train: SampleSet, *, device: str) -> Proxy:
    """The task's downstream recipe fitted to `train` (the real training split: nothing else reaches it)."""
    from cxrbench.registry import get_task

    task = get_task(task_name)
    model = task.train_model(train, seed=PROXY_SEED, device=device)
    return Proxy(task=task, model=model, trained_on=[str(i) for i in train.sample_ids])
