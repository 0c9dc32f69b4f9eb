"""The proxy: the task's own downstream model, trained on the real training split only, grading synthetic images.

It scores each image against the condition it was made for: for a classification task the mean
probability it gives the requested value of each label, for a segmentation task the Dice between
its predicted mask and the requested mask. Its seed differs from the agreement judge's and from
every run seed, so a filter built on it is never graded by itself.
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



@dataclass
class Proxy:
    task: str
    net: object
    """The task recipe's torch model (classifier or segmenter)."""
    trained_on: list[str]
    """Sample ids of the real images it learnt from: the training split, checked by the leakage test."""

    def scores(self, images: np.ndarray, conditions: list[Condition], *, device: str) -> np.ndarray:
        """One score in [0, 1] per image: how well it shows the condition it was asked for."""
        from cxrbench.registry import get_task
        from cxrbench.tasks.downstream.metrics import dice_per_image
        from cxrbench.tasks.downstream.segmenter import predict_masks
        from cxrbench.tasks.downstream.training import predict

        task = get_task(self.task)
        if task.meta.kind == "segmentation":
            requested = np.stack([np.asarray(c.mask, dtype=bool) for c in conditions])
            return dice_per_image(predict_masks(self.net, images, device=device), requested)
        probabilities = predict(self.net, images[:, None], device=device)
        requested = np.array([[c.labels.get(name, 0) for name in task.meta.labels] for c in conditions], dtype=bool)
        return np.where(requested, probabilities, 1 - probabilities).mean(axis=1).astype(np.float64)

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, directory / "proxy.safetensors")
        (directory / "proxy.json").write_text(json.dumps({"task": self.task, "trained_on": self.trained_on}))

    @classmethod
    def load(cls, directory: Path) -> Proxy:
        from safetensors.torch import load_file

        if not (directory / "proxy.json").is_file():
            raise GeneratorError(f"{directory} holds no saved proxy (proxy.json missing)")
        meta = json.loads((directory / "proxy.json").read_text())
        net = _build(meta["task"])
        net.load_state_dict(load_file(directory / "proxy.safetensors"))
        return cls(task=meta["task"], net=net.eval(), trained_on=meta["trained_on"])


def train_proxy(task_name: str, train: SampleSet, *, device: str) -> Proxy:
    """The task's downstream recipe fitted to `train` (the real training split: nothing else reaches it)."""
    from cxrbench.registry import get_task
    from cxrbench.tasks.downstream.classifier import fit_classifier
    from cxrbench.tasks.downstream.segmenter import fit_segmenter
    from cxrbench.tasks.downstream.training import deterministic_cell

    task = get_task(task_name)
    with deterministic_cell(PROXY_SEED):
        if task.meta.kind == "segmentation":
            if train.masks is None:
                raise GeneratorError(f"the proxy for {task_name} needs training masks")
            net = fit_segmenter(train.images, train.masks, channels=task.channels, schedule=task.schedule,
                                seed=PROXY_SEED, device=device)
        else:
            net = fit_classifier(train.images, train.labels, model=task.model, schedule=task.schedule,
                                 seed=PROXY_SEED, device=device)
    return Proxy(task=task_name, net=net.eval(), trained_on=[str(i) for i in train.sample_ids])


def _build(task_name: str):
    from cxrbench.registry import get_task
    from cxrbench.tasks.downstream.classifier import build_classifier
    from cxrbench.tasks.downstream.segmenter import build_segmenter

    task = get_task(task_name)
    if task.meta.kind == "segmentation":
        return build_segmenter(task.channels)
    return build_classifier(task.model, len(task.meta.labels))
