"""The contract a task meets: its data, the conditions it asks generators for, its downstream recipe, its score."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .conditions import PROTOCOL_POLICY, Condition, ConditionPolicy
from .errors import ConfigError
from .samples import SampleSet, Splits
from .schemas import SmokeSettings, TaskMeta
from .stats import CaseMetric
from .subgroups import Subgroups

Predictions = dict[str, np.ndarray]
"""What a downstream model leaves behind: arrays named by split (e.g. 'val_prob', 'test_prob', 'test_mask')."""


@dataclass(frozen=True)
class TestScores:
    """A seed's test scores, as a task's `case_metric` computes them from its stored predictions."""

    __test__: ClassVar[bool] = False  # a name pytest would otherwise try to collect

    metric: CaseMetric
    """The score as a case metric the statistics resample by patient."""
    per_label: dict[str, float]
    """The score per label (for a single-label classification task: per class)."""
    secondary: dict[str, float] = field(default_factory=dict)
    """Descriptive numbers beside the score (e.g. AUROC; Dice on positive images); a key is omitted where the
    number is undefined on this test set, never NaN."""


DownstreamModel = Any
"""The task's downstream model as its recipe builds it: a torch module, so that its weights can be saved and loaded.
Only the task that made it reads it (`predict`, `condition_scores`)."""


class Task(ABC):
    meta: ClassVar[TaskMeta]
    folder: ClassVar[str | None] = None
    """The dataset's folder under the data root, for tasks on real data (None: the task makes its own)."""
    redistributable: ClassVar[bool] = False
    """Whether images of this task (and synthetic images, which may be near copies of them) may be published
    with a submission. Real datasets may not (covid-lungs' per-image licences, CheXpert's terms); rendered
    phantoms show no patient."""
    smoke: ClassVar[SmokeSettings | None] = None
    """What the task runs under the smoke profile (`cxrbench run --profile smoke`); None: the task has none. A class
    setting, not a TaskMeta field: the meta is stored in every result and entry and compared field by field, and the
    smoke settings are no part of the protocol (they are versioned by `protocol.SMOKE_PROFILE_VERSION`)."""
    public_data: ClassVar[bool] = False
    """Whether anyone may obtain this task's data without an agreement, so that CI keeps a copy and retrains
    entries on it (`verification`): the rendered phantoms and the open suite; not the paper suite's credentialed
    datasets."""

    @abstractmethod
    def load(self, root: Path | None, *, train_size: int | None = None, cache_dir: Path | None = None) -> Splits:
        """The standard patient-level split; `train_size` keeps that many real training images (the regime's fixed
        subset; None: the whole training split).

        `cache_dir` is the run's cache, where real-data tasks keep their decoded, resized pixels."""

    @abstractmethod
    def pool(self, root: Path | None, *, train_size: int | None, cache_dir: Path | None = None) -> SampleSet:
        """Training-split images of patients outside the regime's subset (never val or test): the real images the
        `real_extra` control adds. Empty when the regime uses the whole training split."""

    def pretraining_pool(self, root: Path | None, *, train_size: int | None,
                         cache_dir: Path | None = None) -> SampleSet:
        """The task's pretraining pool: images a generator may learn from before it adapts to the regime's training
        subset (a "public corpus"), disjoint by patient from that subset and from val and test. Declared per suite
        (docs/tasks-and-data.md); a generator that learnt from it declares `DatasetRef(<task>, "pretraining")`."""
        raise self._no_pretraining_pool()

    def pretraining_fingerprint(self, root: Path | None, *, train_size: int | None) -> dict[str, Any]:
        """Everything that identifies `pretraining_pool`'s data, without loading its pixels (the pretrained fit's
        cache key): a fit on it is shared by every regime and seed whose pool is the same."""
        raise self._no_pretraining_pool()

    def pretraining_pool_is_empty(self, root: Path | None, *, train_size: int | None) -> bool:
        """Whether the regime leaves nothing to pretrain on (a pool drawn from the training split, in a regime that
        uses all of it): a pretraining generator then trains from scratch there. False for a task with a pool of its
        own, and for one with none at all (asking for its pool is refused)."""
        return False

    def _no_pretraining_pool(self) -> ConfigError:
        return ConfigError(f"task {self.meta.name} declares no pretraining pool: train its generators from scratch "
                           f"(e.g. ldm_text: {{init: scratch}})")

    @abstractmethod
    def fingerprint(self, root: Path | None) -> dict[str, Any]:
        """Everything that identifies the data this task loads (enters every cache key)."""

    policy_settings: ClassVar[frozenset[str]] = frozenset()
    """The `ConditionPolicy` settings this task's conditions follow (the others leave them unchanged)."""

    @abstractmethod
    def conditions(self, train: SampleSet, n: int, *, seed: int,
                   policy: ConditionPolicy = PROTOCOL_POLICY) -> list[Condition]:
        """`n` conditions drawn from the real training distribution under `policy`; identical for every generator."""

    def policy_key(self, policy: ConditionPolicy) -> dict[str, Any]:
        """What `policy` changes in this task's conditions: part of a synthetic set's key where not empty, so that the
        protocol's policy (and a setting the task ignores) keeps the keys, and the cached sets, it always had."""
        return {name: value for name, value in policy.changes().items() if name in self.policy_settings}

    @abstractmethod
    def recipe(self) -> dict[str, Any]:
        """The downstream recipe's settings (model, number of training steps, optimiser): part of every cell's key."""

    @abstractmethod
    def train_model(self, train: SampleSet, *, seed: int, device: str) -> DownstreamModel:
        """The fixed downstream recipe trained on `train`, all its randomness from `seed`.

        The one training path: a run cell's model, the agreement judge and a generator's proxy."""

    @abstractmethod
    def untrained_model(self) -> DownstreamModel:
        """The recipe's model before training: what saved weights are loaded into."""

    @abstractmethod
    def predict(self, model: DownstreamModel, splits: Splits, *, device: str) -> Predictions:
        """The model's predictions of val and test: what `case_metric` reads."""

    @abstractmethod
    def embed(self, model: DownstreamModel, images: np.ndarray, *, device: str) -> np.ndarray:
        """The model's representation of each image (N, D) float32: the in-domain features that fidelity and
        memorisation are measured in (`feature_extractors.InDomainEncoder`), from a model of this task's recipe."""

    @abstractmethod
    def condition_scores(self, model: DownstreamModel, images: np.ndarray, conditions: list[Condition], *,
                         device: str) -> np.ndarray:
        """One score in [0, 1] per image: how well the model finds in it the condition it was made for."""

    def train_and_predict(self, train: SampleSet, splits: Splits, *, seed: int, device: str) -> Predictions:
        """Train the fixed downstream model on `train` (real, or real + synthetic) and predict val and test."""
        return self.predict(self.train_model(train, seed=seed, device=device), splits, device=device)

    @abstractmethod
    def case_metric(self, predictions: Predictions, splits: Splits) -> TestScores:
        """The test score as a case metric the statistics can resample, the score per label, secondary numbers."""

    def subgroups(self, test: SampleSet, root: Path | None) -> Subgroups:
        """The test patients' attributes (e.g. sex, age band) as masks over the test rows, for the subgroup analysis
        (`subgroups.analyse`); a row in no group of an attribute has no known value. Default: the task has none."""
        return {}

    def simulate(self, conditions: list[Condition], *, seed: int) -> np.ndarray:
        """Fresh images from the true data generator; only simulated suites can do this (the oracle)."""
        raise NotImplementedError(f"task {self.meta.name} has no simulator")

    def fresh_patients(self, n_patients: int) -> SampleSet:
        """Every study of `n_patients` new patients of the task's population: a test set as large as wanted, to
        estimate an arm's true effect (`cxrbench calibrate`); only simulated suites can do this."""
        raise NotImplementedError(f"task {self.meta.name} is not simulated: it has no population to draw new "
                                  f"patients from")
