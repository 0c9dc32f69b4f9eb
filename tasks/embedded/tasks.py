"""The embedded suite: phantom chest radiographs the project renders itself, so no download is needed.

Both tasks draw one fixed population of patients (several studies each, shared anatomy), split it
by the versioned patient hash rule, and keep a small fixed training subset by default: small enough
that more data still helps, which is what lets a benchmark see a generator's effect at all.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cxrbench.conditions import Condition, MaskCondition
from cxrbench.geometry import apply_affine
from cxrbench.samples import SampleSet, Splits
from cxrbench.schemas import SmokeSettings, TaskMeta
from cxrbench.subgroups import Subgroups, sex_and_age

from ..classification import ClassificationTask
from ..downstream.training import Schedule
from ..segmentation import SegmentationTask
from ..splits import SPLIT_RULE, fixed_train_subset, outside_subset, split_indices
from .phantom import (
    FINDINGS,
    PhantomConfig,
    Population,
    patient_age,
    patient_anatomy,
    patient_sex,
    render_conditions,
    simulate_population,
)

_SOURCE = "Rendered by cxrbench.tasks.embedded.phantom; nothing to download."
FRESH_POPULATION_OFFSET = 10_000
"""Added to a task's population seed for `fresh_patients`: patients the task's own splits never hold."""
PRETRAINING_POPULATION_OFFSET = 20_000
"""Added to a task's population seed for its pretraining pool, a population of its own (ids prefixed `public-`)."""
PRETRAINING_SCANNER = {"noise_sigma": 0.036, "blur_sigma": 0.7, "exposure_jitter": 0.08}
"""How the pretraining pool's "scanner" differs from the task's: a little noisier, softer and less even in
exposure, the way one hospital's public corpus differs from another's task data (MIMIC-CXR vs CheXpert). Anatomy,
findings and prevalences are the task's, so the pool teaches the same conditions (a mask model needs masks)."""


class _PhantomTask:
    """Loading and simulation shared by the two phantom tasks."""

    meta: ClassVar[TaskMeta]
    phantom: ClassVar[PhantomConfig]
    prevalence: ClassVar[dict[str, float]]
    n_patients: ClassVar[int] = 1200
    pretraining_patients: ClassVar[int] = 2000
    """The pretraining pool's size: about 4,000 studies, several times the task's whole training split (about
    840 patients), rendered in seconds."""
    studies_per_patient: ClassVar[tuple[int, int]] = (1, 3)
    population_seed: ClassVar[int]
    redistributable: ClassVar[bool] = True
    """Rendered phantoms show no patient: their entries carry a gallery."""
    public_data: ClassVar[bool] = True
    smoke: ClassVar[SmokeSettings] = SmokeSettings(regimes=["scarce"], seeds=4)
    """The smoke profile: the scarce regime (where the controls' effects are largest), 4 seeds, the default ratio;
    a cell costs the same in every regime (the recipe's steps are fixed), so one regime halves the work."""
    data_version: ClassVar[str] = "1"
    """The version of the data alone (bumped when the population or its rendering changes), so that a new
    recipe (meta.version) keeps generator fits cached; the recipe enters every downstream cell's key itself."""

    def fingerprint(self, root: Path | None) -> dict[str, Any]:
        return {"task": self.meta.name, "version": self.data_version, "phantom": self.phantom.__dict__,
                "prevalence": self.prevalence, "n_patients": self.n_patients,
                "studies_per_patient": self.studies_per_patient, "seed": self.population_seed}

    @cached_property
    def _population(self) -> Population:
        return simulate_population(self.n_patients, prevalence=self.prevalence,
                                   studies_per_patient=self.studies_per_patient, config=self.phantom,
                                   seed=self.population_seed)

    def load(self, root: Path | None, *, train_size: int | None = None, cache_dir: Path | None = None) -> Splits:
        everything, rows = self._everything()
        train = everything.subset(rows["train"])
        train = train.subset(fixed_train_subset(train.patient_ids, train_size))
        return Splits(train=train, val=everything.subset(rows["val"]), test=everything.subset(rows["test"]))

    def pool(self, root: Path | None, *, train_size: int | None, cache_dir: Path | None = None) -> SampleSet:
        everything, rows = self._everything()
        train = everything.subset(rows["train"])
        return train.subset(outside_subset(train.patient_ids, train_size))

    def pretraining_pool(self, root: Path | None, *, train_size: int | None,
                         cache_dir: Path | None = None) -> SampleSet:
        """A public corpus: another population of phantom patients (another seed, ids prefixed `public-`, so disjoint
        from every split by construction) under a slightly different scanner (`PRETRAINING_SCANNER`); the same
        for every regime, so one pretrained fit serves them all."""
        return self._pretraining_population

    def pretraining_fingerprint(self, root: Path | None, *, train_size: int | None) -> dict[str, Any]:
        return {**self.fingerprint(root), "pool": "public phantom population", "n_patients": self.pretraining_patients,
                "seed": self.population_seed + PRETRAINING_POPULATION_OFFSET, "scanner": PRETRAINING_SCANNER}

    @cached_property
    def _pretraining_population(self) -> SampleSet:
        return self._other_population(self.pretraining_patients, PRETRAINING_POPULATION_OFFSET, "public-",
                                      replace(self.phantom, **PRETRAINING_SCANNER))

    def _other_population(self, n_patients: int, offset: int, prefix: str, phantom: PhantomConfig) -> SampleSet:
        """Every study of `n_patients` patients of another seed of the task's population, ids prefixed `prefix`."""
        population = simulate_population(n_patients, prevalence=self.prevalence,
                                         studies_per_patient=self.studies_per_patient, config=phantom,
                                         seed=self.population_seed + offset)
        return SampleSet(population.images, self._labels(population.labels), self._masks(population.masks),
                         np.char.add(prefix, population.patient_ids), np.char.add(prefix, population.study_ids))

    def _everything(self) -> tuple[SampleSet, dict[str, np.ndarray]]:
        population = self._population
        everything = SampleSet(population.images, self._labels(population.labels), self._masks(population.masks),
                               population.patient_ids, population.study_ids)
        return everything, split_indices(population.patient_ids)

    def subgroups(self, test: SampleSet, root: Path | None) -> Subgroups:
        """Sex and age band, read off the anatomy each test patient was rendered with (`patient_sex`,
        `patient_age`): attributes of the very draws that shaped the images."""
        anatomies = {pid: patient_anatomy(int(pid[1:]), seed=self.population_seed)
                     for pid in np.unique(test.patient_ids).tolist()}
        return sex_and_age([patient_sex(anatomies[p]) for p in test.patient_ids.tolist()],
                           [patient_age(anatomies[p]) for p in test.patient_ids.tolist()])

    def fresh_patients(self, n_patients: int) -> SampleSet:
        """Every study of `n_patients` new patients from the same renderer and prevalences (another population
        seed, ids prefixed `fresh-`): a test set as large as wanted, to estimate an arm's true effect."""
        return self._other_population(n_patients, FRESH_POPULATION_OFFSET, "fresh-", self.phantom)

    def simulate(self, conditions: list[Condition], *, seed: int) -> np.ndarray:
        """Label conditions: new patients with exactly those findings. Mask conditions: a new study of
        the mask's source patient with the source pneumothorax, moved by the condition's affine, so the
        anatomy around the requested mask is consistent (a new patient's lungs would not fit the mask)."""
        rng = np.random.default_rng([seed, 303])
        labels = (rng.random((len(conditions), len(FINDINGS))) < [self.prevalence[f] for f in FINDINGS]).astype(np.int8)
        for row, condition in enumerate(conditions):
            for name, value in condition.labels.items():
                labels[row, FINDINGS.index(name)] = value
        masked = [c for c in conditions if isinstance(c, MaskCondition)]
        if not masked:
            return render_conditions(labels, None, config=self.phantom, seed=seed)
        if len(masked) != len(conditions):
            raise ValueError("cannot mix mask and other conditions in one simulation")
        population = self._population
        row_of = {sid: i for i, sid in enumerate(population.study_ids.tolist())}
        rows = [row_of[c.source_id] for c in masked]
        anatomies = [patient_anatomy(int(population.patient_ids[r][1:]), seed=self.population_seed) for r in rows]
        images = render_conditions(labels, population.masks[rows], config=self.phantom, seed=seed, anatomies=anatomies)
        return np.stack([apply_affine(image, c.transform, nearest=False) for image, c in zip(images, masked)])

    def _labels(self, labels: np.ndarray) -> np.ndarray:
        return labels[:, [FINDINGS.index(name) for name in self.meta.labels]].astype(np.int8)

    def _masks(self, masks: np.ndarray) -> np.ndarray | None:
        return masks if self.meta.kind == "segmentation" else None


class PhantomClassification(_PhantomTask, ClassificationTask):
    meta = TaskMeta(
        name="phantom_cls", version="2", suite="embedded", kind="classification",
        labels=["cardiomegaly", "effusion", "consolidation", "pneumothorax"], metric="macro_f1", resolution=64,
        description="Multi-label findings on phantom chest radiographs (64x64); macro F1 over the four findings.",
        data_source=_SOURCE, split_rule=SPLIT_RULE, regimes={"scarce": 50, "full": 200},
        default_ratios=[1.0], default_seeds=5,
    )
    phantom = PhantomConfig(size=64)
    prevalence = {"cardiomegaly": 0.3, "effusion": 0.3, "consolidation": 0.3, "pneumothorax": 0.3}
    population_seed = 11
    model = "small_cnn"
    schedule = Schedule(steps=200, batch_size=32, learning_rate=2e-3, weight_decay=1e-4)


class PhantomSegmentation(_PhantomTask, SegmentationTask):
    meta = TaskMeta(
        name="phantom_seg", version="2", suite="embedded", kind="segmentation",
        labels=["pneumothorax"], metric="dice", resolution=64,
        description="Pneumothorax segmentation on phantom chest radiographs (64x64); mean Dice per image, "
                    "empty-empty = 1, threshold and minimum area chosen on val.",
        data_source=_SOURCE, split_rule=SPLIT_RULE, regimes={"scarce": 20, "full": 40},
        default_ratios=[2.0], default_seeds=5,
    )
    phantom = PhantomConfig(size=64)
    prevalence = {"cardiomegaly": 0.3, "effusion": 0.3, "consolidation": 0.3, "pneumothorax": 0.6}
    population_seed = 12
    channels = (8, 16, 32, 64)
    schedule = Schedule(steps=600, batch_size=8, learning_rate=3e-3, weight_decay=1e-4)
