"""Registries: in-repo tasks and generators, third-party generators by entry point, the CLI's command groups.

Entries are "module:Class" strings; a class's registry name is its `meta.name` (two classes with one
name are refused), so the name a user types is the one its results carry. Listing imports each
module, so modules keep heavy imports (torch, diffusers, MONAI) inside their methods. A third-party
generator's results are marked unverified because nobody here reviewed its code.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points

from .errors import UnknownNameError
from .generator import Generator
from .task import Task

ENTRY_POINT_GROUP = "cxrbench.generators"

TASK_CLASSES = (
    "cxrbench.tasks.embedded.tasks:PhantomClassification",
    "cxrbench.tasks.embedded.tasks:PhantomSegmentation",
    "cxrbench.tasks.real.open_suite:PneumoniaKermany",
    "cxrbench.tasks.real.open_suite:CovidLungSegmentation",
    "cxrbench.tasks.real.paper_suite:ChexpertClassification",
    "cxrbench.tasks.real.paper_suite:RsnaClassification",
    "cxrbench.tasks.real.paper_suite:SiimSegmentation",
    "cxrbench.tasks.real.paper_suite:CandidSegmentation",
)

GENERATOR_CLASSES = (
    "cxrbench.generators.real_only:RealOnly",
    "cxrbench.generators.classic_aug:ClassicAugmentation",
    "cxrbench.generators.oracle:Oracle",
    "cxrbench.generators.noise:Noise",
    "cxrbench.generators.real_extra:RealExtra",
    "cxrbench.generators.carried:Carried",
    "cxrbench.generators.ldm.generator:TextConditionedLDM",
    "cxrbench.generators.ldm.generator:MaskConditionedLDM",
    "cxrbench.generators.ldm.refined:TextProxyLDM",
    "cxrbench.generators.ldm.refined:MaskProxyLDM",
    "cxrbench.generators.ldm.reviewed:MaskReviewedLDM",
    "cxrbench.generators.pretrained:PretrainedPipeline",
)

COMMAND_GROUPS = {
    "data": "cxrbench.tasks.real.data_cli:data_app",
}
"""CLI sub-apps that live next to what they serve (the dataset commands next to the datasets)."""


def load_target(target: str) -> object:
    """The attribute a "module:attribute" string names."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _by_name(classes: Iterable[type], kind: str) -> dict[str, type]:
    found: dict[str, type] = {}
    for cls in classes:
        name = cls.meta.name
        if name in found:
            raise RuntimeError(f"two {kind} classes are registered as {name!r}: {found[name].__qualname__} and "
                               f"{cls.__qualname__}")
        found[name] = cls
    return found


@lru_cache(maxsize=1)
def _tasks() -> dict[str, type[Task]]:
    return _by_name(map(load_target, TASK_CLASSES), "task")


@lru_cache(maxsize=1)
def _in_repo_generators() -> dict[str, type[Generator]]:
    return _by_name(map(load_target, GENERATOR_CLASSES), "generator")


def task_names() -> list[str]:
    return sorted(_tasks())


def suites() -> list[str]:
    return sorted({cls.meta.suite for cls in _tasks().values()})


def suite_tasks(suite: str) -> list[str]:
    names = [name for name, cls in sorted(_tasks().items()) if cls.meta.suite == suite]
    if not names:
        raise UnknownNameError(f"unknown suite {suite!r}; known suites: {', '.join(suites())}")
    return names


def task_class(name: str) -> type[Task]:
    if name not in _tasks():
        raise UnknownNameError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return _tasks()[name]


def get_task(name: str) -> Task:
    return task_class(name)()


@lru_cache(maxsize=1)
def _third_party() -> dict[str, type[Generator]]:
    found: dict[str, type[Generator]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        cls = point.load()
        if cls.meta.name in _in_repo_generators() or cls.meta.name in found:
            continue  # an in-repo name cannot be shadowed from outside, nor the first plugin of a name
        cls.meta = cls.meta.model_copy(update={"verified": False})
        found[cls.meta.name] = cls
    return found


def generator_names() -> list[str]:
    return sorted(_in_repo_generators()) + sorted(_third_party())


def generator_class(name: str) -> type[Generator]:
    for registry in (_in_repo_generators(), _third_party()):
        if name in registry:
            return registry[name]
    raise UnknownNameError(f"unknown generator {name!r}; known generators: {', '.join(generator_names())}")
