"""`cxrbench card init`: a commented `generator.yaml` with every field the card's schema needs.

The fields the author alone knows (authors, hardware) are left empty, so the card is refused, naming
them, until they are filled in; what the generator's metadata already says (conditioning, licence,
description, data it saw before the run, the pretraining pools it is configured to learn from) is filled in
from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .generator import Generator
from .protocol import SUBMISSION_SCHEMA_VERSION, incompatibility
from .registry import suite_tasks, task_class
from .schemas import GeneratorMeta

TEMPLATE = """\
# The card of a cxrbench leaderboard entry (submissions/<name>/generator.yaml). Plain text only: HTML tags and
# script URLs are refused, and so is any field not listed here. Fill in every field marked "required"; then
# `cxrbench submit RESULT --generator-yaml THIS_FILE` checks it (docs/adding-a-generator.md, "The card").

# The card format this file is written in; leave it as it is.
schema_version: '{schema_version}'
# required: the generator's name (its meta.name), equal to the entry's folder name.
name: {name}
# required: the version or commit of the generator's code that made the results.
revision: {revision}
# required: at least one author, one per line ("- Ada Lovelace").
authors: []
# required: where the code lives (a URL, or the module path of an installed package).
code: {code}
# required: the code's licence.
licence: {licence}
# required: the conditions it takes: label, text and/or mask.
conditioning: {conditioning}
# required: every dataset and split the generator learnt from, before the run and during it (its fit on a
# task's training split counts): e.g. {{dataset: embedded, split: train}}; a task's pretraining pool is
# {{dataset: <task>, split: pretraining}}. For a task's own data (its name, suite or dataset folder) only the
# train split and the pretraining pool may be declared: declaring its val or test split (or any other) is
# refused, since the task's test data would then have been seen.
training_data: {training_data}
# required: what the submission was computed on (e.g. "2-core x86-64 CPU, no GPU").
hardware: ''
# optional: one or two sentences shown on the generator's page.
description: {description}
"""


def card_template(name: str, meta: GeneratorMeta | None, *, trainable: bool = False, module: str | None = None,
                  pretrained_on: Sequence[str] = ()) -> str:
    """The commented card for generator `name`, prefilled from its metadata when it is a known generator.

    A trainable generator learns from the tasks' training splits during the run, so `embedded`'s train split (the
    suite an entry starts on) is listed, and so is the pretraining pool of each task in `pretrained_on`
    (`pretraining_tasks`); an author adds the splits of each other suite they submit on."""
    def flow(value: object) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()

    if meta is None:
        fields = dict(revision="''", code="''", licence="''", conditioning="[]", training_data="[]",
                      description="''")
    else:
        learnt = [ref.model_dump() for ref in meta.trained_on]
        fitted = [("embedded", "train")] if trainable else []
        for dataset, split in fitted + [(task, "pretraining") for task in pretrained_on]:
            if {"dataset": dataset, "split": split} not in learnt:
                learnt.append({"dataset": dataset, "split": split})
        fields = dict(revision=flow(_code_version(module) or f"meta.version {meta.version}"),
                      code=flow(module or ""), licence=flow(meta.licence), conditioning=flow(list(meta.conditioning)),
                      training_data=flow(learnt), description=flow(meta.description))
    return TEMPLATE.format(schema_version=SUBMISSION_SCHEMA_VERSION, name=flow(name), **fields)


def pretraining_tasks(cls: type[Generator], options: Mapping[str, Any], suite: str = "embedded") -> list[str]:
    """The tasks of `suite` whose pretraining pool `cls`, configured by `options`, learns from before fitting
    (`Generator.pretrains`); a bad option is a one-line ConfigError naming it."""
    if not cls.trainable:
        return []
    tasks = [task_class(name).meta for name in suite_tasks(suite)]
    return [task.name for task in tasks if incompatibility(cls.meta, task) is None and cls(task, **options).pretrains()]


def _code_version(module: str | None) -> str | None:
    """"<distribution> <version>" of the installed package that holds `module`, if one does."""
    if not module:
        return None
    for distribution in packages_distributions().get(module.partition(".")[0], []):
        try:
            return f"{distribution} {version(distribution)}"
        except PackageNotFoundError:
            continue
    return None


def write_new(path: Path, text: str) -> None:
    """Write `text` at `path` whole or not at all, and never over an existing file (the author's edits would be
    lost): written beside it first, then hard-linked into place, which fails if the name is taken."""
    import tempfile

    if path.exists() or path.is_symlink():
        raise _exists(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp") as handle:
            handle.write(text)
            handle.flush()
            os.link(handle.name, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot write the card there ({error.strerror or error})") from None


def _exists(path: Path) -> ConfigError:
    return ConfigError(f"{path} exists; cxrbench card init does not overwrite it (edit it, or choose another --out)")
