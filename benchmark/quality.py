"""A run's quality step: fidelity, memorisation and re-identification of each synthetic arm's reviewed set.

Per task, one feature extractor and one re-identification verifier, both trained (or loaded) on the largest regime's
real training split, so that every regime and arm of the task is measured in one feature space. Per (task, regime),
each synthetic arm's set of the run's first seed at its first ratio (`plan.first_ratio_cell`, the set agreement and
review look at) is compared with the real test split (fidelity; the memorisation and re-identification thresholds)
and searched against the regime's real training split (memorisation, re-identification). Features are cached per
image source (`features`) and each arm's whole result in the `quality` stage, keyed by the synthetic set,
the regime's data, the extractor's identity, the verifier and the settings: a rerun computes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import progress
from .cache import Cache
from .cell import synthetic_set
from .errors import DataError
from .feature_extractors import extractor_from_spec
from .features import cached_features
from .fidelity.assessment import NO_FINDING, NO_IMAGES, WITH_FINDING, WITHOUT_FINDING, ArmQuality, QualitySettings
from .fidelity.extractor import FeatureExtractor
from .fidelity.memorisation import memorisation, nearest_training
from .fidelity.metrics import fidelity, fidelity_by_group
from .fidelity.patient_pairs import VerifierSettings
from .fidelity.reidentification import reidentification
from .plan import Arm, Cell, TaskPlan, first_ratio_cell, largest_regime_splits, stage_key
from .reidentification_verifier import Verifier, cached_verifier
from .samples import SampleSet, Splits
from .schemas import RunConfig, TaskMeta
from .task import Task

log = logging.getLogger(__name__)

QUALITY_FILE = "quality.json"


@dataclass(frozen=True)
class TaskSpaces:
    """What every regime and arm of one task is measured with."""

    data_key: str
    """The real data both were trained on (the largest regime's)."""
    extractor: FeatureExtractor
    verifier: Verifier | None
    no_verifier: str | None = None
    """Why there is no verifier: the training split lacks patients with two studies."""


def task_spaces(task: Task, config: RunConfig, cache: Cache) -> TaskSpaces:
    """The task's extractor (`config.feature_extractor`) and verifier, trained on its largest regime's real data once
    and kept in the cache."""
    real, data = largest_regime_splits(task, config.data_root, cache.root)
    extractor = extractor_from_spec(config.feature_extractor, task=task, real=real, data_key=data, cache=cache,
                                    device=config.device)
    try:
        return TaskSpaces(data, extractor, cached_verifier(real.train, data, cache, settings=VERIFIER_SETTINGS,
                                                           device=config.device))
    except DataError as error:
        log.warning("no re-identification score on %s: %s", task.meta.name, error)
        return TaskSpaces(data, extractor, None, f"no verifier: {error}")


def condition_groups(task: TaskMeta, samples: SampleSet) -> dict[str, np.ndarray]:
    """Boolean masks over `samples`' rows: per label and `no finding` for classification (a multi-label image is in
    each of its labels' groups), `with finding` / `without finding` by mask for segmentation."""
    if task.kind == "segmentation":
        found = samples.masks.reshape(len(samples), -1).any(axis=1)
        return {WITH_FINDING: found, WITHOUT_FINDING: ~found}
    labelled = samples.labels > 0
    return {**{label: labelled[:, j] for j, label in enumerate(task.labels)}, NO_FINDING: ~labelled.any(axis=1)}


def assessed_cells(plan: TaskPlan) -> list[tuple[Arm, Cell]]:
    """Each synthetic arm's assessed set: its first ratio's cell of the run's first seed (the reviewed seed in a
    protocol run)."""
    generators = dict.fromkeys(arm.generator for arm in plan.arms)
    return [first_ratio_cell(plan, generator, plan.seeds[0]) for generator in generators]


def quality_key(cell: Cell, spaces: TaskSpaces, settings: QualitySettings) -> str:
    return stage_key("quality", {"synthetic": cell.synthetic_key, "data": cell.data_key, "spaces": spaces.data_key,
                                 "extractor": spaces.extractor.identity.model_dump(mode="json"),
                                 "verifier": None if spaces.verifier is None else spaces.verifier.settings.model_dump(),
                                 "settings": settings.model_dump()})


def arm_quality(plan: TaskPlan, arm: Arm, cell: Cell, spaces: TaskSpaces, cache: Cache,
                settings: QualitySettings) -> ArmQuality:
    """The arm's quality, from the cache or measured and stored there."""
    key = quality_key(cell, spaces, settings)
    if not cache.is_complete("quality", key):
        with progress.stage(f"quality: {arm.generator} on {plan.task.meta.name} {plan.regime}"):
            quality = measure(plan, arm, cell, spaces, cache, settings)
        with cache.writing("quality", key, {"task": plan.task.meta.name, "generator": arm.generator,
                                            "extractor": spaces.extractor.identity.name}) as out:
            (out / QUALITY_FILE).write_text(quality.model_dump_json())
    return ArmQuality.model_validate_json((cache.path("quality", key) / QUALITY_FILE).read_text())


def _pixels(images: np.ndarray) -> np.ndarray:
    """Images as rows of flattened pixels at the task's resolution: the space where a near-copy is a copy."""
    return images.reshape(len(images), -1)


@dataclass(frozen=True)
class AssessedSet:
    """What an arm's quality is computed from: the synthetic set's features in the task's space, its condition
    groups, and its images where they are at hand (in a run, and in an entry on a task whose images may be
    published; an entry on other data carries features only, so its pixel-space numbers cannot exist)."""

    features: np.ndarray
    groups: dict[str, np.ndarray]
    images: np.ndarray | None


def assessed_set(plan: TaskPlan, cell: Cell, spaces: TaskSpaces, cache: Cache) -> AssessedSet:
    """The cell's synthetic set (generated first if the cache lacks it), its features and condition groups."""
    synthetic = synthetic_set(cell, cache, plan.splits)
    features = cached_features(spaces.extractor, synthetic.images, source_key=cell.synthetic_key, cache=cache)
    return AssessedSet(features, condition_groups(plan.task.meta, synthetic), synthetic.images)


def real_features(spaces: TaskSpaces, real: Splits, data_key: str, cache: Cache) -> tuple[np.ndarray, np.ndarray]:
    """The regime's real test and training features in the task's space (cached per split)."""
    features = partial(cached_features, spaces.extractor, cache=cache)
    return (features(real.test.images, source_key=f"{data_key}:test"),
            features(real.train.images, source_key=f"{data_key}:train"))


def measure(plan: TaskPlan, arm: Arm, cell: Cell, spaces: TaskSpaces, cache: Cache,
            settings: QualitySettings) -> ArmQuality:
    return assess(plan.task.meta, plan.splits, cell.data_key, assessed_set(plan, cell, spaces, cache), spaces, cache,
                  settings, generator=arm.generator, ratio=arm.ratio, seed=cell.seed, synthetic_key=cell.synthetic_key)


def assess(meta: TaskMeta, real: Splits, data_key: str, synthetic: AssessedSet, spaces: TaskSpaces, cache: Cache,
           settings: QualitySettings, *, generator: str, ratio: float, seed: int, synthetic_key: str) -> ArmQuality:
    """One synthetic set's quality against the regime's real splits (`data_key`): a run measures through it, and
    `cxrbench validate` recomputes an entry's numbers through it from what the entry stores."""
    test_features, train_features = real_features(spaces, real, data_key, cache)
    near = {"features": (nearest_training(synthetic.features, train_features, "synthetic features"),
                         nearest_training(test_features, train_features, "test features"))}
    if synthetic.images is not None:
        near["pixels"] = (nearest_training(_pixels(synthetic.images), _pixels(real.train.images), "synthetic pixels"),
                          nearest_training(_pixels(real.test.images), _pixels(real.train.images), "test pixels"))
    space_names = {"features": spaces.extractor.identity.name, "pixels": "pixels"}
    nearest_synthetic, nearest_test = near["features"]
    reidentified = synthetic.images is not None and spaces.verifier is not None
    return ArmQuality(
        generator=generator, ratio=ratio, seed=seed, synthetic_key=synthetic_key,
        n_synthetic=len(synthetic.features), n_real_test=len(real.test), n_real_train=len(real.train),
        extractor=spaces.extractor.identity, settings=settings,
        fidelity=fidelity(test_features, synthetic.features, settings.fidelity),
        fidelity_by_group={} if not synthetic.groups else fidelity_by_group(
            test_features, synthetic.features, condition_groups(meta, real.test), synthetic.groups,
            settings.fidelity),
        memorisation={space: memorisation(*pair, space=space_names[space], quantile=settings.memorisation_quantile,
                                          n_pairs=settings.closest_pairs) for space, pair in near.items()},
        reidentification=reidentification(
            spaces.verifier, synthetic.images, real.train.images[nearest_synthetic.index], real.test.images,
            real.train.images[nearest_test.index], test_patient_ids=real.test.patient_ids,
            quantile=settings.memorisation_quantile, n_boot=settings.fidelity.n_boot) if reidentified else None,
        no_reidentification=None if reidentified else spaces.no_verifier if synthetic.images is not None
        else NO_IMAGES)


DEFAULT_SETTINGS = QualitySettings()
"""What a run measures with."""
VERIFIER_SETTINGS = VerifierSettings()
"""How a run's verifier trains (recorded in each ReidentificationResult; tests swap in a tiny one)."""


def assess_run(plans: list[TaskPlan], config: RunConfig, cache: Cache,
               settings: QualitySettings | None = None) -> list[list[ArmQuality]]:
    """Per plan, its synthetic arms' quality, in arm order."""
    settings = settings or DEFAULT_SETTINGS
    spaces: dict[str, TaskSpaces] = {}
    qualities = []
    for plan in plans:
        cells = assessed_cells(plan)
        if cells and plan.task.meta.name not in spaces:
            spaces[plan.task.meta.name] = task_spaces(plan.task, config, cache)
        qualities.append([arm_quality(plan, arm, cell, spaces[plan.task.meta.name], cache, settings)
                          for arm, cell in cells])
    return qualities
