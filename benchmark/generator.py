"""The contract a generator meets; heavy imports belong inside its methods so listing stays instant.

Options: a generator declares the options it takes (`--generator-config`, e.g. `ldm_text: {preset: tiny}`) as a
pydantic model on the class, `Options`, a subclass of `GeneratorOptions` (unknown keys refused, floats finite,
frozen); every bound an option has is a field constraint (`Field(ge=1)`, `Field(gt=0, le=1)`). The default,
`GeneratorOptions` itself, takes no option at all. A run validates every generator's options once, before any
work (`checked_config`), and refuses a bad one in one line naming the generator and the option's path;
`__init__` validates them again (for a generator built directly), keeps the model as `self.options`, and keeps its
canonical JSON form (what was given, coerced to the declared types) as `self.config`, the config that enters the
revision and the fit key.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import ValidationError

from .cache import content_key
from .code_identity import code_identity
from .conditions import Condition
from .errors import ConfigError, GeneratorError
from .generator_faults import place
from .options import GeneratorOptions, refused_option
from .samples import SampleSet
from .schemas import GeneratorMeta, TaskMeta


class Generator(ABC):
    meta: ClassVar[GeneratorMeta]
    trainable: ClassVar[bool] = False
    """Trainable generators are fitted once per (task data, config, seed), saved, and loaded from the cache."""
    Options: ClassVar[type[GeneratorOptions]] = GeneratorOptions
    """The options it takes, as a pydantic model (see the module's docstring); by default none."""
    fit_source: Literal["train", "pretraining"] = "train"
    """What `fit` learns from: the regime's training split, or the task's pretraining pool (`Task.pretraining_pool`:
    the first link of a pretrain-then-adapt chain, cached under the pool's key, so every regime and seed shares it)."""

    def __init__(self, task: TaskMeta, *, device: str = "cpu", **config: Any) -> None:
        self.task = task
        self.device = device
        """Where to fit and generate; not part of the config, since it must not change the output's meaning."""
        self.options = self.checked_options(config)
        self.config = self.canonical_config(self.options)
        self._state_revision: str | None = None

    @classmethod
    def checked_options(cls, config: Mapping[str, Any]) -> GeneratorOptions:
        """`config` validated by `Options`; a ConfigError of one line naming the generator and the option if not."""
        try:
            return cls.Options.model_validate(config)
        except ValidationError as error:
            raise ConfigError(refused_option(cls.meta.name, cls.Options, error)) from None

    @staticmethod
    def canonical_config(options: GeneratorOptions) -> dict[str, Any]:
        """The options given, as JSON values of their declared types: `steps: "4"` and `steps: 4` are one config."""
        return options.model_dump(mode="json", exclude_unset=True)

    def fit(self, train: SampleSet, *, seed: int, workdir: Path) -> None:
        """Learn from the task's training split only (never val or test). Default: nothing to learn."""

    @abstractmethod
    def generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64) -> np.ndarray:
        """Images (N, H, W) float32 in [0, 1] at the task's resolution, one per condition, in order."""

    def draw(self, conditions: list[Condition], pool: SampleSet, *, seed: int) -> tuple[np.ndarray, list[Condition]]:
        """For a generator whose meta says `needs_pool` (real_extra): real images from the regime's pool (training
        patients outside its subset), one per requested condition, with the conditions they really show."""
        raise GeneratorError(f"{self.meta.name} does not draw from the real pool (meta.needs_pool is false)")

    def refines(self) -> Generator | None:
        """The generator whose fitted state this one continues from, or None.

        The runner fits (or loads) that one first, under its own fit key, and hands it to
        `start_from` before `fit`: so each round of a fine-tuning chain is cached as its own fit.
        """
        return None

    def pretrains(self) -> bool:
        """Whether this generator's `refines` chain starts with a fit on the task's pretraining pool: its fit then
        depends on the pool's data as well as on the training split's (the fit key holds both)."""
        return False

    def from_scratch(self) -> Generator:
        """The same generator without its pretraining, for a regime whose pretraining pool is empty (the whole
        training split is the regime's: nothing else to learn from). Only a generator that `pretrains` needs it."""
        raise GeneratorError(f"{self.meta.name} pretrains but has no way to train without its pretraining pool")

    def start_from(self, parent: Generator) -> None:
        """Take over the fitted state of `refines()`'s generator; `fit` then refines it."""
        raise GeneratorError(f"{self.meta.name} refines no other generator")

    def generation_notes(self) -> dict[str, Any]:
        """What the last `generate` call wants recorded in its synthetic set's manifest (e.g. acceptance rates)."""
        return {}

    def save(self, directory: Path) -> None:
        """Write what `load` needs (trainable generators only)."""

    def load(self, directory: Path) -> None:
        """Restore a fitted state written by `save`."""

    def fit_identity(self) -> dict[str, Any]:
        """What decides the fitted state (the fit cache key): by default the name, version and config.

        A generator whose config also holds sampling settings narrows this, so that changing how it
        samples reuses the fit instead of training again. The fit key adds the generator's code identity
        (`code_identity.py`) to this itself, so an override need not.
        """
        return {"generator": self.meta.name, "version": self.meta.version, "config": self.config}

    def revision(self) -> str:
        """Hash of what decides the output: name, version, config, code identity and, once fitted, the fitted
        state."""
        inputs = {"name": self.meta.name, "version": self.meta.version,
                  "config": json.dumps(self.config, sort_keys=True), "code": code_identity(type(self)),
                  "state": self._state_revision}
        return content_key("generator", "1", inputs)

    def mark_fitted(self, state_key: str) -> None:
        self._state_revision = state_key

    def checked_generate(self, conditions: list[Condition], *, seed: int, batch_size: int = 64,
                         regime: str | None = None) -> np.ndarray:
        """`generate`, plus the checks every synthetic set must pass before anything trains on it; `regime` (the
        run's, where known) is for the error messages."""
        images = np.asarray(self.generate(conditions, seed=seed, batch_size=batch_size))
        size = self.task.resolution
        expected = (len(conditions), size, size)
        where = place(self.task.name, regime, seed)
        if images.shape != expected:
            raise GeneratorError(f"generator {self.meta.name} returned shape {images.shape} {where}, expected "
                                 f"{expected}")
        finite = np.isfinite(images)
        outside = int(np.count_nonzero(finite & ((images < 0) | (images > 1))))
        if not finite.all() or outside:
            raise GeneratorError(f"generator {self.meta.name} returned {images.size - int(finite.sum()):,} "
                                 f"non-finite value(s) (NaN or infinity) and {outside:,} outside [0, 1], of "
                                 f"{images.size:,}, {where}")
        return images.astype(np.float32, copy=False)
