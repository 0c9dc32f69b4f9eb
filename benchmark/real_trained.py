"""A task's recipe trained once on the real training split with a reserved seed, and kept in the stage cache.

The agreement judge (`agreement.judge`) and the in-domain feature encoder (`feature_extractors.InDomainEncoder`)
are both such a model: trained once per (data, recipe, seed) and then read from the cache by every later grading or
measurement, for any generator. A reserved seed (`protocol`) keeps each of them apart from the models a run compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cache import Cache
from .plan import stage_key
from .samples import Splits
from .task import DownstreamModel, Task


@dataclass(frozen=True)
class RealTrained:
    model: DownstreamModel
    weights: Path
    """The cached safetensors file the model was loaded from (its hash identifies the model)."""


def real_trained_key(task: Task, data_key: str, *, stage: str, seed: int) -> str:
    """The cache key of the recipe trained on the data of `data_key` with `seed`, in `stage`."""
    return stage_key(stage, {"data": data_key, "recipe": task.recipe(), "seed": seed})


def trained_on_real(task: Task, real: Splits, data_key: str, cache: Cache, *, stage: str, seed: int,
                    device: str) -> RealTrained:
    """The task's recipe trained on `real.train` with `seed`; trained only where the cache's `stage` lacks it, and
    always loaded from the cached weights, so a fresh model and a cached one are the same bits."""
    from safetensors.torch import load_file, save_file

    key = real_trained_key(task, data_key, stage=stage, seed=seed)
    name = f"{stage}.safetensors"
    if not cache.is_complete(stage, key):
        model = task.train_model(real.train, seed=seed, device=device)
        with cache.writing(stage, key, {"task": task.meta.name, "seed": seed}) as out:
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, out / name)
    weights = cache.path(stage, key) / name
    model = task.untrained_model()
    model.load_state_dict(load_file(weights))
    return RealTrained(model, weights)
