"""Registries: in-repo tasks and generators, third-party generators by entry point, the CLI's command groups.

Entries are "module:Class" strings; a class's registry name is its `meta.name` (two classes with one
name are refused), so the name a user types is the one its results carry. Listing imports each
module, so modules keep heavy imports (torch, diffusers, MONAI) inside their methods. A third-party
generator's results are marked unverified because nobody here reviewed its code.

Plugins (entry points of group `cxrbench.generators`) are loaded one by one: one that cannot be imported, is
not a concrete Generator subclass or has no valid `meta` is skipped with one warning naming its entry point,
target, distribution and error, so the other plugins and the in-repo generators keep working; `cxrbench list`
shows it, and asking for it by name fails in one line saying why it did not load.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from .errors import GeneratorError, UnknownNameError
from .generator import Generator
from .schemas import GeneratorMeta
from .task import Task

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why (one line)."""

    entry_point: str
    target: str
    distribution: str
    error: str

    def line(self) -> str:
        return (f"entry point {self.entry_point} = {self.target} (distribution {self.distribution}, group "
                f"{ENTRY_POINT_GROUP}): {self.error}")


@dataclass(frozen=True)
class Plugins:
    loaded: dict[str, type[Generator]] = field(default_factory=dict)
    failed: dict[str, PluginFailure] = field(default_factory=dict)
    """By entry point name: a plugin that failed to load has no `meta.name` to go by."""


def _distribution(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return "unknown" if dist is None else f"{dist.name} {dist.version}"


def _plugin_class(point: EntryPoint) -> type[Generator]:
    """The class an entry point names, or an exception saying why it cannot serve as a generator."""
    cls = point.load()
    if not (inspect.isclass(cls) and issubclass(cls, Generator)):
        raise TypeError(f"it names {cls!r}, not a subclass of cxrbench.generator.Generator")
    if not isinstance(getattr(cls, "meta", None), GeneratorMeta):
        raise TypeError(f"{cls.__qualname__}.meta is not a GeneratorMeta")
    if inspect.isabstract(cls):
        raise TypeError(f"{cls.__qualname__} is abstract (it lacks {', '.join(sorted(cls.__abstractmethods__))})")
    return cls


@lru_cache(maxsize=1)
def _plugins() -> Plugins:
    plugins = Plugins()
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = _plugin_class(point)
        except Exception as error:  # noqa: BLE001 - a plugin's import may raise anything; it must not stop the rest
            failure = PluginFailure(point.name, point.value, _distribution(point), f"{type(error).__name__}: {error}")
            plugins.failed.setdefault(point.name, failure)
            log.warning("plugin skipped, it failed to load: %s", failure.line())
            continue
        name = cls.meta.name
        taken = "a generator of cxrbench itself" if name in _in_repo_generators() else (
            f"taken by {plugins.loaded[name].__module__}:{plugins.loaded[name].__qualname__}"
            if name in plugins.loaded else None)
        if taken:
            log.warning("plugin skipped: entry point %s = %s (distribution %s) is named %r, %s (a name cannot be "
                        "shadowed)", point.name, point.value, _distribution(point), name, taken)
            continue
        cls.meta = cls.meta.model_copy(update={"verified": False})
        plugins.loaded[name] = cls
    return plugins


def failed_plugins() -> list[PluginFailure]:
    """The plugins that failed to load (a working plugin's name shadows a broken entry point of the same name)."""
    plugins = _plugins()
    return [f for name, f in sorted(plugins.failed.items()) if name not in plugins.loaded]


def generator_names() -> list[str]:
    return sorted(_in_repo_generators()) + sorted(_plugins().loaded)


def generator_class(name: str) -> type[Generator]:
    for registry in (_in_repo_generators(), _plugins().loaded):
        if name in registry:
            return registry[name]
    failure = _plugins().failed.get(name)
    if failure is not None:
        raise GeneratorError(f"generator {name!r} is a plugin that failed to load: {failure.line()}")
    raise UnknownNameError(f"unknown generator {name!r}; known generators: {', '.join(generator_names())}")
