"""Lazy registries: in-repo tasks and generators by name, third-party generators by entry point.

Entries are "module:Class" strings so that listing imports only light modules; a third-party
generator's results are marked unverified because nobody here reviewed its code.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points

from .errors import UnknownNameError
from .generator import Generator
from .task import Task

ENTRY_POINT_GROUP = "cxrbench.generators"

TASKS: dict[str, str] = {
    "phantom_cls": "cxrbench.tasks.embedded.tasks:PhantomClassification",
    "phantom_seg": "cxrbench.tasks.embedded.tasks:PhantomSegmentation",
    "pneumonia_cls": "cxrbench.tasks.real.open_suite:PneumoniaKermany",
    "covid_lung_seg": "cxrbench.tasks.real.open_suite:CovidLungSegmentation",
    "chexpert_cls": "cxrbench.tasks.real.paper_suite:ChexpertClassification",
    "rsna_cls": "cxrbench.tasks.real.paper_suite:RsnaClassification",
    "siim_seg": "cxrbench.tasks.real.paper_suite:SiimSegmentation",
    "candid_seg": "cxrbench.tasks.real.paper_suite:CandidSegmentation",
}

GENERATORS: dict[str, str] = {
    "real_only": "cxrbench.generators.real_only:RealOnly",
    "classic_aug": "cxrbench.generators.classic_aug:ClassicAugmentation",
    "oracle": "cxrbench.generators.oracle:Oracle",
    "noise": "cxrbench.generators.noise:Noise",
    "ldm_text": "cxrbench.generators.ldm.generator:TextConditionedLDM",
    "ldm_mask": "cxrbench.generators.ldm.generator:MaskConditionedLDM",
    "ldm_text_proxy": "cxrbench.generators.ldm.refined:TextProxyLDM",
    "ldm_mask_proxy": "cxrbench.generators.ldm.refined:MaskProxyLDM",
    "ldm_mask_reviewed": "cxrbench.generators.ldm.reviewed:MaskReviewedLDM",
    "pretrained_pipeline": "cxrbench.generators.pretrained:PretrainedPipeline",
}

BASELINE = "real_only"


def _load(target: str) -> type:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def task_names() -> list[str]:
    return sorted(TASKS)


def suite_tasks(suite: str) -> list[str]:
    names = [name for name in task_names() if task_class(name).meta.suite == suite]
    if not names:
        known = sorted({task_class(n).meta.suite for n in task_names()})
        raise UnknownNameError(f"unknown suite {suite!r}; known suites: {', '.join(known)}")
    return names


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise UnknownNameError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return _load(TASKS[name])


def get_task(name: str) -> Task:
    return task_class(name)()


@lru_cache(maxsize=1)
def _third_party() -> dict[str, type[Generator]]:
    found: dict[str, type[Generator]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in GENERATORS:
            continue  # an in-repo name cannot be shadowed from outside
        cls = point.load()
        cls.meta = cls.meta.model_copy(update={"verified": False})
        found[point.name] = cls
    return found


def generator_names() -> list[str]:
    return sorted(GENERATORS) + sorted(_third_party())


def generator_class(name: str) -> type[Generator]:
    if name in GENERATORS:
        return _load(GENERATORS[name])
    if name in _third_party():
        return _third_party()[name]
    raise UnknownNameError(f"unknown generator {name!r}; known generators: {', '.join(generator_names())}")
