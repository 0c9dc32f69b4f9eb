"""`cxrbench validate` for an entry's quality numbers: each recomputed from the arrays the entry stores.

CI trains (or loads from validate's cache) its own in-domain extractor and re-identification verifier for the task,
exactly as a run does, and refuses numbers computed with any other extractor. Where the entry stores the assessed
images (tasks whose images may be published), their features are recomputed and must be the stored ones. Then every
number (fidelity, per-group fidelity over the groups of the protocol's conditions, memorisation in feature space and,
with images, in pixel space, re-identification) is recomputed against CI's own real test and training data, and
must equal the stored one. A number CI cannot recompute (pixel-space numbers without images) must be absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .assessed_sets import ASSESSED_DIR, FEATURES, IMAGES, array_key, as_floats, assessed_path, read_assessed
from .cache import Cache
from .closest_pairs import MAX_FIGURE_BYTES, decoded, figure_file, figure_pixels
from .differences import differences
from .fidelity.assessment import ArmQuality
from .plan import data_key
from .samples import SampleSet, Splits
from .submission import TaskSubmission
from .synthetic import training_rows
from .task import Task
from .untrusted import read_bounded

FEATURE_TOLERANCE = 1e-5
"""Relative difference allowed between stored features and CI's features of the stored images: the embedding's last
bits depend on the batch composition (measured ~2e-5 relative at other batch sizes); the numbers are then recomputed
from the stored features, so they must match to 1e-9."""

Add = Callable[[str, str], None]


class QualityChecker:
    """Checks the quality of every task file of a validate call, training each task's extractor and verifier once
    (kept in `cache`, as a run keeps them)."""

    def __init__(self, cache: Cache, data_root: Path | None) -> None:
        self.cache, self.data_root = cache, data_root
        self._spaces: dict[str, object] = {}

    def check(self, path: Path, submission: TaskSubmission, task: Task, splits: Splits, needs_pool: dict[str, bool],
              add: Add) -> None:
        qualities = submission.result.quality
        stored_file = assessed_path(path)
        field = f"{ASSESSED_DIR}/{stored_file.name}"
        if not qualities:
            if stored_file.exists() or stored_file.is_symlink():
                add(field, "holds assessed sets, but the result states no quality numbers")
            if submission.closest_pairs:
                add("closest_pairs", "names a figure, but the result states no quality numbers")
            return
        try:
            arrays = read_assessed(stored_file)
        except FileNotFoundError:
            add(field, "is missing: CI recomputes the result's quality numbers from it (write the entry with "
                       "`cxrbench submit`)")
            return
        except (OSError, ValueError) as error:
            add(field, str(getattr(error, "strerror", None) or error))
            return
        used: set[str] = set()
        recomputed: dict[str, tuple[ArmQuality, np.ndarray | None]] = {}
        for i, quality in enumerate(qualities):
            arm = self._arm_problem(submission, quality, recomputed)
            if arm:
                add(f"result.quality[{i}]", arm)
                continue
            used |= {array_key(quality, FEATURES), array_key(quality, IMAGES)}
            found = self._recomputed(quality, arrays, submission, task, splits, needs_pool, add, i, field)
            if found is not None:
                recomputed[quality.generator] = found
        extra = sorted(set(arrays) - used)
        if extra:
            add(field, f"holds {len(extra)} array(s) no assessed arm uses (e.g. {extra[0]!r})")
        self._check_figure(path.parent, submission, task, splits, recomputed, add)

    def _spaces_of(self, task: Task, submission: TaskSubmission):
        from .quality import task_spaces  # trains models: loaded only for entries that state quality numbers

        name = task.meta.name
        if name not in self._spaces:
            config = submission.config.model_copy(update={"data_root": self.data_root, "device": "cpu",
                                                          "feature_extractor": "in_domain"})
            self._spaces[name] = task_spaces(task, config, self.cache)
        return self._spaces[name]

    @staticmethod
    def _arm_problem(submission: TaskSubmission, quality: ArmQuality, seen: dict) -> str | None:
        arms = {(a.generator, a.ratio): a for a in submission.result.arms}
        if (quality.generator, quality.ratio) not in arms:
            return f"assesses {quality.generator} at ratio {quality.ratio:g}, which is no arm of the entry"
        first = next(a.ratio for a in submission.result.arms if a.generator == quality.generator)
        if quality.ratio != first or quality.seed != 0:
            return (f"assesses ratio {quality.ratio:g}, seed {quality.seed}; the assessed set is the reviewed one: "
                    f"the arm's first ratio ({first:g}) and seed 0")
        if quality.generator in seen:
            return f"assesses {quality.generator} a second time"
        return None

    def _recomputed(self, quality: ArmQuality, arrays: dict[str, np.ndarray], submission: TaskSubmission, task: Task,
                    splits: Splits, needs_pool: dict[str, bool], add: Add, i: int,
                    field: str) -> tuple[ArmQuality, np.ndarray | None] | None:
        """The arm's quality recomputed from the stored arrays (and its stored images), or None after a problem."""
        from .quality import DEFAULT_SETTINGS, AssessedSet, assess, condition_groups

        where = f"result.quality[{i}]"
        if quality.settings != DEFAULT_SETTINGS:
            add(f"{where}.settings", f"are {quality.settings.model_dump()}; the protocol's are "
                                     f"{DEFAULT_SETTINGS.model_dump()}")
            return None
        spaces = self._spaces_of(task, submission)
        ours = spaces.extractor.identity
        if quality.extractor != ours:
            add(f"{where}.extractor", f"computed with another extractor ({quality.extractor.name}, weights "
                                      f"{quality.extractor.weights_sha256[:12]}); CI recomputes in task "
                                      f"{task.meta.name}'s in-domain encoder (weights {ours.weights_sha256[:12]})")
            return None
        n = next(a.n_synthetic for a in submission.result.arms
                 if (a.generator, a.ratio) == (quality.generator, quality.ratio))
        features, images = arrays.get(array_key(quality, FEATURES)), arrays.get(array_key(quality, IMAGES))
        size = task.meta.resolution
        if features is None:
            add(field, f"has no {array_key(quality, FEATURES)!r}")
            return None
        if features.shape != (n, ours.dim) or not np.isfinite(features).all():
            add(field, f"{array_key(quality, FEATURES)} has shape {features.shape} (finite: "
                       f"{bool(np.isfinite(features).all())}); expected ({n}, {ours.dim}) finite values")
            return None
        if task.redistributable != (images is not None):
            add(field, f"{'lacks' if images is None else 'holds'} {array_key(quality, IMAGES)!r}; entries on "
                       f"{task.meta.suite}-suite tasks {'carry' if task.redistributable else 'carry no'} the assessed "
                       f"images")
            return None
        if images is not None:
            if images.shape != (n, size, size):
                add(field, f"{array_key(quality, IMAGES)} has shape {images.shape}; expected ({n}, {size}, {size})")
                return None
            embedded = spaces.extractor.embed(as_floats(images))
            if not np.allclose(embedded, features, rtol=FEATURE_TOLERANCE, atol=FEATURE_TOLERANCE):
                largest = float(np.abs(embedded - features).max())
                add(field, f"{array_key(quality, FEATURES)} are not the features of the stored images (largest "
                           f"difference {largest:.3g})")
                return None
        groups = {} if needs_pool.get(quality.generator, False) else condition_groups(
            task.meta, _protocol_rows(task, splits, n, quality.seed))
        expected = assess(task.meta, splits, data_key(task, splits, self.data_root),
                          AssessedSet(features, groups, None if images is None else as_floats(images)), spaces,
                          self.cache, quality.settings, generator=quality.generator, ratio=quality.ratio,
                          seed=quality.seed, synthetic_key=quality.synthetic_key)
        for name in ("memorisation", "fidelity_by_group"):
            unrecomputable = sorted(set(getattr(quality, name)) - set(getattr(expected, name)))
            if unrecomputable:
                add(f"{where}.{name}", f"states {', '.join(unrecomputable)}, which CI cannot recompute from the "
                                       f"entry; leave it out")
        for found, what in differences(expected.model_dump(mode="json"), quality.model_dump(mode="json"), where,
                                       "the stored features and images"):
            add(found, what)
        return expected, images

    @staticmethod
    def _check_figure(folder: Path, submission: TaskSubmission, task: Task, splits: Splits,
                      recomputed: dict[str, tuple[ArmQuality, np.ndarray | None]], add: Add) -> None:
        """The closest-pairs figure, redrawn from the stored images and CI's training images: equal pixels."""
        own = recomputed.get(submission.generator)
        pairs = None if own is None or "pixels" not in own[0].memorisation else own[0].memorisation["pixels"]
        expected = figure_file(task.meta.name, submission.result.regime)
        if submission.closest_pairs is None:
            if pairs is not None and pairs.closest_pairs:
                add("closest_pairs", f"is missing; entries on {task.meta.suite}-suite tasks show {expected}")
            return
        if submission.closest_pairs != expected or pairs is None or not pairs.closest_pairs:
            add("closest_pairs", f"is {submission.closest_pairs!r}; expected "
                                 f"{expected if pairs is not None else 'none (no pixel-space pairs recomputed)'}")
            return
        try:
            stored = decoded(read_bounded(folder / submission.closest_pairs, MAX_FIGURE_BYTES))
        except (OSError, ValueError) as error:
            add("closest_pairs", f"{submission.closest_pairs}: {getattr(error, 'strerror', None) or error}")
            return
        drawn = figure_pixels(own[1], splits.train.images, pairs.closest_pairs)
        if stored.shape != drawn.shape or not np.array_equal(stored, drawn):
            add("closest_pairs", f"{submission.closest_pairs} is not the figure of the stored images and their "
                                 f"nearest training images (CI redrew it)")


def _protocol_rows(task: Task, splits: Splits, n: int, seed: int) -> SampleSet:
    """The labels and masks of the conditions the protocol asks an arm's set for (CI recomputes them: they are the
    same for every generator), as rows without images."""
    conditions = task.conditions(splits.train, n, seed=seed)
    size = task.meta.resolution
    ids = np.array([f"conditions/{i}" for i in range(n)])
    return training_rows(np.zeros((n, size, size), dtype=np.float32), conditions, task.meta.labels, ids)
