"""`cxrbench verify`: retrain an entry's cells with the protocol's own code and compare the predictions.

`validate` proves that an entry's numbers follow from its stored predictions; this proves that those
predictions follow from training. Every cell CI can reach (`verification.retrained_arms`) is planned
exactly as `cxrbench run` plans it, computed through the stage cache (shared entries, such as the
baseline's cells, are trained once for all entries), and its predictions must equal the entry's
(`protocol.PREDICTION_TOLERANCE` is 0: the CPU kernels are pinned, `kernels.py`). A match means the
numbers shown are the numbers CI's own training gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import Cache
from .carried import sets_path
from .errors import ConfigError, SubmissionError
from .kernels import cpu_identity
from .plan import Cell, plan_tasks
from .predictions import load_predictions
from .protocol import BASELINE, PREDICTION_TOLERANCE
from .ray_executor import RayCluster
from .registry import get_task
from .runner import compute
from .schemas import RunConfig
from .submission import TaskSubmission, decode_predictions, load_task_submission, prediction_key, task_files
from .validate import Problem, validate
from .verification import Level, carries_sets, level, retrained_arms

CARRIED = "carried"
"""The generator that serves a third-party entry's carried synthetic sets (generators/carried.py)."""


@dataclass(frozen=True)
class FileVerification:
    path: Path
    level: Level
    cells: int
    """Cells retrained and compared."""
    largest_difference: float
    """The largest difference of any compared prediction (probability, or share of mask pixels)."""


def verify(paths: list[Path], cache_root: Path, *, data_root: Path | None = None, seeds: list[int] | None = None,
           workers: int = 1, show_progress: bool = True, ray: RayCluster | None = None) -> list[FileVerification]:
    """Validate the entries, then retrain what CI can reach and compare; raises SubmissionError listing every
    differing prediction. A task file among `paths` limits its entry to the files named, and `seeds` to those
    seeds: quick local checks (CI retrains every file and seed)."""
    cache = Cache(cache_root)
    named = [path for path in paths if path.is_file()]
    if seeds is not None:
        _check_seeds_held(named or [file for path in paths if path.is_dir() for file in task_files(path)], seeds)
    checked, problems = [], []
    for folder in validate(paths, data_root):
        files = [path for path in named if path.parent == folder] or task_files(folder)
        for path in files:
            found, verification = _verify_file(path, cache, data_root, seeds, workers, show_progress, ray)
            problems += found
            checked.append(verification)
    if problems:
        raise SubmissionError(problems)
    return checked


def _check_seeds_held(files: list[Path], seeds: list[int]) -> None:
    """A --seeds that no file holds is refused before validation, which trains CI's quality models."""
    for path in files:
        try:
            held = [s.seed for s in load_task_submission(path).result.baseline.seeds]
        except (OSError, ValueError):
            continue  # validation names what is wrong with the file
        if not set(seeds) & set(held):
            raise ConfigError(f"{path}: --seeds {','.join(map(str, seeds))}: the entry holds none of these seeds "
                              f"(it holds {held[0]}-{held[-1]})")


def _verify_file(path: Path, cache: Cache, data_root: Path | None, seeds: list[int] | None, workers: int,
                 show_progress: bool, ray: RayCluster | None) -> tuple[list[Problem], FileVerification]:
    submission = load_task_submission(path)
    task = get_task(submission.task)
    sets = sets_path(path)
    carried = carries_sets(path, submission)
    arms = retrained_arms(submission, task.public_data, carried)
    # a third-party arm is retrained from its carried images, planned as the `carried` generator
    planned = {name: CARRIED if carried and name == submission.generator else name for name in arms}
    stored = {(planned[a.generator], a.ratio) for a in submission.result.arms if a.generator in arms}
    cells = []
    if arms:
        config = RunConfig(tasks=[submission.task], regimes=[submission.result.regime],
                           generators=list(planned.values()), ratios=sorted({ratio for _, ratio in stored}) or None,
                           seeds=submission.config.seeds, n_boot=submission.config.n_boot, data_root=data_root,
                           generator_config={CARRIED: {"sets": str(sets)}} if carried else {})
        plans = plan_tasks(config, cache.root)
        submitted_name = {CARRIED: submission.generator} if carried else {}
        cells = [(submitted_name.get(arm.generator, arm.generator), arm.ratio, cell)
                 for plan in plans for arm in (plan.baseline, *plan.arms) for cell in arm.cells
                 if (arm.generator == BASELINE or (arm.generator, arm.ratio) in stored)
                 and (seeds is None or cell.seed in seeds)]
        compute(plans, [cell for *_, cell in cells], cache, workers=workers, show_progress=show_progress, ray=ray)
    entry = decode_predictions(submission.predictions)
    problems, largest = [], 0.0
    for generator, ratio, cell in cells:
        found, difference = _compare(submission, entry, generator, ratio, cell, cache)
        problems += [(str(path), field, what) for field, what in found]
        largest = max(largest, difference)
    return problems, FileVerification(path, level(submission, task.public_data, carried), len(cells), largest)


def _compare(submission: TaskSubmission, entry: dict[str, np.ndarray], generator: str, ratio: float, cell: Cell,
             cache: Cache) -> tuple[list[tuple[str, str]], float]:
    prefix = prediction_key(generator, ratio, cell.seed, "")
    retrained = load_predictions(cache, cell)
    submitted = {key[len(prefix):]: value for key, value in entry.items() if key.startswith(prefix)}
    if set(submitted) != set(retrained):
        return [("predictions", f"{prefix}*: holds {sorted(submitted)}; CI's retraining gives "
                                f"{sorted(retrained)}")], 0.0
    problems, largest = [], 0.0
    for name, ours in retrained.items():
        theirs = submitted[name]
        if theirs.shape != ours.shape:
            problems.append(("predictions", f"{prefix}{name}: shape {theirs.shape}; CI's retraining gives "
                                            f"{ours.shape}"))
            continue
        difference = _difference(ours, theirs)
        largest = max(largest, difference)
        if difference > PREDICTION_TOLERANCE:
            problems.append(("predictions", f"{prefix}{name}: differs from CI's retraining of this cell by "
                                            f"{difference:.3g} (tolerance {PREDICTION_TOLERANCE:g}): the "
                                            f"predictions do not come from the protocol's training on this "
                                            f"machine's CPU vendor ({cpu_identity().split()[0]}; entries trained "
                                            f"on another vendor's CPU differ: docs/verification.md)"))
    return problems, largest


def _difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest absolute difference of probabilities; share of differing pixels or labels otherwise."""
    if ours.dtype.kind == "f":
        return float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)), initial=0.0))
    return float(np.mean(ours != theirs)) if ours.size else 0.0
