"""`cxrbench validate`: check submissions before they reach the leaderboard; CI runs it on every entry.

Every number is recomputed from the stored predictions and the task's own labels through
`scoring.score_predictions`, the code the runner uses, and compared field by field. Around that:
the schema, the task version and split, the protocol's seeds, ratios and bootstrap size, the
metadata of the generator and its references, and the declared training data (a task's test split
there is a leak). All problems are collected and raised together as one `SubmissionError`.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .cache import Cache
from .carried import SETS_DIR, conditions_digest, read_sets, sets_path
from .differences import differences
from .errors import DataError, SubmissionError, UnknownNameError
from .protocol import (
    BASELINE,
    PROTOCOL_VERSION,
    condition_kind,
    entry_references,
    incompatibility,
    leaked_training_data,
    synthetic_count,
)
from .registry import generator_class, get_task
from .samples import Splits, split_hash
from .schemas import ArmResult, RunConfig
from .scoring import ArmPredictions, TaskPredictions, score_predictions
from .subgroups import Subgroups
from .submission import (
    CARD_FILE,
    GeneratorCard,
    TaskSubmission,
    decode_predictions,
    load_card,
    load_task_submission,
    prediction_key,
    pydantic_problems,
    task_file_name,
    task_files,
)
from .task import Task
from .task_data import load_splits
from .untrusted import irregular_paths, read_bounded
from .validate_quality import QualityChecker

Problem = tuple[str, str, str]
UNSCORABLE = (ValueError, TypeError, IndexError, KeyError, RuntimeError)
"""What a task's scoring code (numpy, scikit-learn, torch) raises on stored arrays of the wrong names, shapes or
types."""
MAX_GALLERY_BYTES = 200_000


def submission_folders(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Each path: a generator folder, a folder of them (e.g. `submissions/`), or a task file inside one."""
    folders, problems = [], []
    for path in paths:
        if path.is_file():
            folders.append(path.parent)
        elif (path / CARD_FILE).exists() or task_files(path):
            folders.append(path)
        elif path.is_dir() and [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]:
            for child in sorted(path.iterdir()):
                if child.is_symlink():
                    problems.append((str(child), "", "is a symbolic link; an entry is a plain folder"))
                elif child.is_dir() and not child.name.startswith("."):
                    folders.append(child)
        else:
            problems.append((str(path), "", "expected a submission folder, a folder of them, or a task file"))
    return list(dict.fromkeys(folders)), problems


def validate(paths: list[Path], data_root: Path | None = None, cache_root: Path | None = None) -> list[Path]:
    """The submission folders found, all valid; raises SubmissionError listing every problem otherwise.

    Entries on real data are recomputed from the labels of the validating machine's copy under
    `data_root` (else CXRBENCH_DATA_ROOT): the submitter's path is not part of an entry, and the split
    hash proves the copy is the same. Without a copy such an entry is a problem, never a pass. Quality
    numbers are recomputed with the models CI trains and keeps in `cache_root` (None: a temporary cache).
    """
    folders, problems = submission_folders(paths)
    with tempfile.TemporaryDirectory(prefix="cxrbench-validate-") as scratch:
        checker = QualityChecker(Cache(cache_root or Path(scratch)), data_root)
        for folder in folders:
            problems += check_folder(folder, data_root, checker)
    if problems:
        raise SubmissionError(problems)
    return folders


def check_folder(folder: Path, data_root: Path | None = None, checker: QualityChecker | None = None) -> list[Problem]:
    problems: list[Problem] = [(str(path), "", what) for path, what in irregular_paths(folder)]
    try:
        card = load_card(folder / CARD_FILE)
    except SubmissionError as error:
        problems += error.problems
        card = None
    if card is not None and card.name != folder.name:
        problems.append((str(folder / CARD_FILE), "name",
                         f"is {card.name!r}; it must equal the folder name {folder.name!r}"))
    files = task_files(folder)
    if not files:
        problems.append((str(folder), "", "no result files (<suite>__<task>__<regime>.json); write them with "
                                          "`cxrbench submit`"))
    by_suite: dict[str, list[tuple[Path, TaskSubmission, TaskPredictions]]] = defaultdict(list)
    blocked = False
    for path in files:
        found, checked = _check_file(path, card, data_root, checker)
        problems += found
        if checked is None:
            blocked = True
        else:
            by_suite[checked[0].suite].append((path, *checked))
    # p-values are corrected across the files of a suite: recompute only where the whole family can be
    for entries in [] if blocked else by_suite.values():
        n_boot = entries[0][1].config.n_boot
        try:
            recomputed = score_predictions([item for _, _, item in entries], n_boot=n_boot)
        except UNSCORABLE as error:
            found = [problem for path, _, item in entries for problem in _unscorable(path, item)]
            problems += found or [(str(folder), "", f"the stored predictions cannot be scored ({error!r})")]
            continue
        for generator, members in recomputed.incomplete.items():
            problems.append((str(folder), "", f"the entry of {generator} lacks {len(members)} comparison(s) the "
                                              f"protocol requires: {'; '.join(members)} (run every regime with the "
                                              f"references, e.g. `cxrbench run --generator {generator},classic_aug`)"))
        for (path, submission, _), result in zip(entries, recomputed.tasks, strict=True):
            # Quality is not scored from predictions: the checker recomputed it (`_check_file`); without one, an entry
            # stating quality numbers is refused rather than trusted.
            stated = submission.result.quality if checker is not None else []
            problems += [(str(path), field, what) for field, what in
                         differences(result.model_copy(update={"quality": stated}).model_dump(mode="json"),
                                     submission.result.model_dump(mode="json"), "result")]
    return problems


def _check_file(path: Path, card: GeneratorCard | None, data_root: Path | None,
                checker: QualityChecker | None) -> tuple[list[Problem], tuple[TaskSubmission, TaskPredictions] | None]:
    """The file's problems, and what to recompute (None when its structure or protocol rules that out)."""
    file = str(path)
    try:
        submission = load_task_submission(path)
    except json.JSONDecodeError as error:
        return [(file, "", f"not valid JSON: {error}")], None
    except OSError as error:
        return [(file, "", f"cannot read: {error.strerror or error}")], None
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        return pydantic_problems(file, error), None
    problems: list[Problem] = []

    def add(field: str, what: str) -> None:
        problems.append((file, field, what))

    try:
        task = get_task(submission.task)
    except UnknownNameError as error:
        return [(file, "result.task.name", str(error))], None
    if card is not None and submission.generator != card.name:
        add("generator", f"is {submission.generator!r}; generator.yaml names {card.name!r}")
    regime = submission.result.regime
    if regime not in task.meta.regimes:
        return [(file, "result.regime", f"is {regime!r}; task {task.meta.name}'s regimes are "
                                        f"{', '.join(task.meta.regimes)}")], None
    try:
        splits = load_splits(task.meta.name, None if data_root is None else str(data_root), task.meta.regimes[regime])
    except DataError as error:
        return [(file, "result.task.name", f"cannot recompute without the task's data (--data-root or "
                                                  f"CXRBENCH_DATA_ROOT): {error}")], None
    expected_name = task_file_name(submission.suite, submission.task, regime)
    if path.name != expected_name:  # also what keeps a (task, regime) to one file: a copy would be scored twice
        return [(file, "", f"holds {submission.suite}/{submission.task}/{regime}, whose file is named "
                           f"{expected_name} (as `cxrbench submit` writes it)")], None
    _check_task(submission, task, splits, add)
    _check_protocol(submission, task, add)
    metas = _check_generators(submission, task, add)
    item = None if problems else _task_predictions(submission, task, splits, metas, add,
                                                   task.subgroups(splits.test, data_root))
    if card is not None:  # the card and gallery do not enter the numbers: recompute regardless
        _check_card(card, task, add)
    _check_gallery(path.parent, submission, task, add)
    _check_carried_sets(path, submission, task, splits, add)
    if checker is not None and not problems:  # quality is recomputed on a sound file only (it trains models)
        checker.check(path, submission, task, splits, {name: meta.needs_pool for name, meta in metas.items()}, add)
    return problems, (submission, item) if item is not None else None


def _check_task(submission: TaskSubmission, task: Task, splits: Splits, add) -> None:
    current, stored = task.meta, submission.result.task
    if stored.version != current.version:
        add("result.task.version", f"is {stored.version!r}; task {current.name} is now at version {current.version!r} "
                                   f"(rerun it and submit again)")
    elif stored != current:
        changed = [k for k in current.model_fields if getattr(current, k) != getattr(stored, k)]
        add("result.task", f"differs from the registered task {current.name} in {', '.join(changed)}")
    if submission.protocol_version != PROTOCOL_VERSION:
        add("protocol_version", f"is {submission.protocol_version!r}; the current protocol is {PROTOCOL_VERSION!r}")
    if submission.split_hash != split_hash(splits):
        add("split_hash", f"is {submission.split_hash!r}; the task's current split hashes to {split_hash(splits)!r}")
    for name, ids in (("val_ids", submission.val_ids), ("test_ids", submission.test_ids)):
        expected = getattr(splits, name[:-4]).sample_ids.astype(str).tolist()
        if ids != expected:
            foreign = sorted(set(ids) - set(expected))
            add(name, f"are not the task's {name[:-4]} cases in order ({len(ids)} given, {len(expected)} expected; "
                      f"{len(foreign)} not in the split, e.g. {foreign[:3]})")


def _check_protocol(submission: TaskSubmission, task: Task, add) -> None:
    meta, config = task.meta, submission.config
    defaults = RunConfig.model_fields
    if config.profile != "protocol":
        add("config.profile", f"is {config.profile!r}; an entry holds a run of the protocol (profile 'protocol')")
    if config.train_size is not None or config.regimes is not None:
        add("config", "names a train size or a subset of regimes; the protocol runs every regime of the task "
                      "(train_size and regimes null)")
    if config.n_boot != defaults["n_boot"].default:
        add("config.n_boot", f"is {config.n_boot}; the protocol uses {defaults['n_boot'].default} bootstrap resamples")
    for name, value in config.condition_policy.changes().items():
        add(f"config.{name}", f"is {json.dumps(value)}; the protocol's is {json.dumps(defaults[name].default)} (other "
                              f"condition policies are exploratory runs, not entries)")
    expected = list(range(meta.default_seeds))
    result = submission.result
    arms = [("result.baseline", result.baseline), *((f"result.arms[{i}]", a) for i, a in enumerate(result.arms))]
    for field, arm in arms:
        seeds = [s.seed for s in arm.seeds]
        if seeds != expected:
            missing, extra = sorted(set(expected) - set(seeds)), sorted(set(seeds) - set(expected))
            add(f"{field}.seeds",
                f"are {seeds}; the protocol's seeds are {expected} (missing {missing}, extra {extra})")
    for i, arm in enumerate(result.arms):
        expected_count = synthetic_count(arm.ratio, arm.n_real)
        if arm.n_synthetic != expected_count:
            add(f"result.arms[{i}].n_synthetic", f"is {arm.n_synthetic}; the protocol adds round(ratio x n_real) = "
                                                 f"{expected_count} synthetic images at ratio {arm.ratio:g}")
    ratios = {a.ratio for a in result.arms if a.generator == submission.generator}
    missing = sorted(set(meta.default_ratios) - ratios)
    if missing:
        add("result.arms", f"have no arm at the task's ratio(s) {missing} (the protocol's default ratios "
                           f"{meta.default_ratios} are required; more are allowed)")


def _check_generators(submission: TaskSubmission, task: Task, add) -> dict[str, Any]:
    metas = {m.name: m for m in submission.generators}
    own = metas.get(submission.generator)
    if own is None:
        add("generators", f"has no metadata for {submission.generator}")
        return metas
    try:
        registered = generator_class(own.name).meta
    except UnknownNameError:
        registered = None
    if registered is not None and registered.verified:
        if own != registered:
            add("generators[0]", f"differs from the registered generator {own.name} (version {registered.version})")
        if not submission.verified:
            add("verified", "is false, but the generator is registered in this repository (true)")
    else:
        if submission.verified:
            add("verified", f"is true, but {own.name} is not a generator registered in this repository")
        if own.role != "generator":
            add("generators[0].role", f"is {own.role!r}; only in-repo generators may be baselines or controls")
    reason = incompatibility(own, task.meta)
    if reason:
        add("generators[0].conditioning", reason)
    allowed = entry_references(own)
    for name in {a.generator for a in submission.result.arms} - {submission.generator}:
        reference = metas.get(name)
        try:
            known = generator_class(name).meta
        except UnknownNameError:
            known = None
        if name not in allowed or known is None or reference != known:
            add("result.arms", f"reference arm {name!r} is not one the protocol names for {own.name} "
                               f"({', '.join(allowed) or 'none'}) as registered in this repository")
    return metas


def _check_card(card: GeneratorCard, task: Task, add) -> None:
    needed = condition_kind(task.meta)
    if needed not in card.conditioning:
        add("generator.yaml conditioning", f"is {card.conditioning}; task {task.meta.name} needs {needed!r}")
    for i in leaked_training_data(card.training_data, task.meta, task.folder):
        ref = card.training_data[i]
        add(f"generator.yaml training_data[{i}]",
            f"declares {ref.dataset}/{ref.split}: the generator saw task {task.meta.name}'s data beyond its "
            f"train split (a test-set leak); only its train split and pretraining pool may be used")


def _check_gallery(folder: Path, submission: TaskSubmission, task: Task, add) -> None:
    if submission.gallery and not task.redistributable:
        add("gallery", f"entries on {task.meta.suite}-suite tasks carry no gallery: the dataset's images, and "
                       f"synthetic images close to them, may not be redistributed here")
        return
    for i, image in enumerate(submission.gallery):
        try:
            data = read_bounded(folder / image.file, MAX_GALLERY_BYTES)
            with Image.open(io.BytesIO(data)) as opened:
                kind = opened.format
        except (OSError, ValueError, UnidentifiedImageError) as error:
            add(f"gallery[{i}].file", f"{image.file} is not a readable PNG under {MAX_GALLERY_BYTES:,} bytes "
                                      f"({error})")
            continue
        if kind != "PNG":
            add(f"gallery[{i}].file", f"{image.file} must be a PNG (it is {kind})")


def _check_carried_sets(path: Path, submission: TaskSubmission, task: Task, splits: Splits, add) -> None:
    """The synthetic sets a third-party entry may carry (`carried`): exactly one per cell of its own arms, for the
    conditions the protocol asks that cell for."""
    sets_file = sets_path(path)
    if not sets_file.exists():
        return
    field = f"{SETS_DIR}/{sets_file.name}"
    if submission.verified or not task.redistributable:
        add(field, "only third-party entries on tasks whose images may be published carry synthetic sets")
        return
    try:
        sets = read_sets(sets_file)
    except (OSError, ValueError) as error:
        add(field, str(getattr(error, "strerror", None) or error))
        return
    size = task.meta.resolution
    expected = {}
    for arm in submission.result.arms:
        if arm.generator == submission.generator:
            for seed in arm.seeds:
                conditions = task.conditions(splits.train, arm.n_synthetic, seed=seed.seed)
                expected[conditions_digest(conditions)] = (arm.ratio, seed.seed, (arm.n_synthetic, size, size))
    for digest, (ratio, seed, shape) in expected.items():
        if digest not in sets:
            add(field, f"has no set for ratio {ratio:g}, seed {seed} (conditions digest {digest[:12]})")
        elif sets[digest].shape != shape:
            add(field, f"the set for ratio {ratio:g}, seed {seed} has shape {sets[digest].shape}; expected {shape}")
    extra = sorted(set(sets) - set(expected))
    if extra:
        add(field, f"holds {len(extra)} set(s) no arm of the entry asks for (e.g. {extra[0][:12]})")


def _task_predictions(submission: TaskSubmission, task: Task, splits: Splits, metas: dict, add,
                      subgroups: Subgroups) -> TaskPredictions | None:
    try:
        arrays = decode_predictions(submission.predictions)
    except ValueError as error:
        add("predictions", str(error))
        return None

    def arm(field: str, result: ArmResult) -> ArmPredictions | None:
        seeds = []
        for s in result.seeds:
            prefix = prediction_key(result.generator, result.ratio, s.seed, "")
            found = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if not found:
                add(f"{field}.seeds", f"no stored predictions for seed {s.seed} (key prefix {prefix!r})")
                return None
            for name, value in found.items():
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    add("predictions", f"{prefix}{name} holds {int((~np.isfinite(value)).sum())} non-finite values")
                    return None
                split = getattr(splits, name.split("_")[0], None)
                rows = len(value) if value.ndim else 0  # a 0-d array has no rows (and no len)
                if split is not None and rows != len(split):
                    add("predictions", f"{prefix}{name} has {rows} rows; the task's {name.split('_')[0]} "
                                       f"split has {len(split)} cases")
                    return None
            seeds.append((s.seed, s.cell, found))
        meta = generator_class(BASELINE).meta if result.generator == BASELINE else metas[result.generator]
        return ArmPredictions(meta, result.generator_revision, result.ratio, result.n_synthetic, seeds)

    result = submission.result
    baseline = arm("result.baseline", result.baseline)
    arms = [arm(f"result.arms[{i}]", a) for i, a in enumerate(result.arms)]
    if baseline is None or None in arms:
        return None
    own = [a for a in arms if a.generator == submission.generator]
    return TaskPredictions(task, result.regime, splits, baseline, own,
                           [a for a in arms if a.generator != submission.generator], subgroups)


def _unscorable(path: Path, item: TaskPredictions) -> list[Problem]:
    """The seeds whose arrays the task's code cannot score: looked for one by one once scoring the suite failed."""
    found = []
    for arm in [item.baseline, *item.arms, *item.references]:
        for seed, _, predictions in arm.seeds:
            try:
                item.task.case_metric(predictions, item.splits)
            except UNSCORABLE as error:
                found.append((str(path), "predictions", f"{prediction_key(arm.generator, arm.ratio, seed, '*')} "
                                                        f"cannot be scored by task {item.task.meta.name} ({error!r})"))
    return found
