"""`cxrbench submit`: turn one generator's part of a RunResult into a folder under `submissions/`.

The predictions come from the stage cache the run used (found by the result's cell keys, which are
re-planned and must match). The entry is re-scored through `scoring.score_predictions`, which
corrects over the generator's protocol family, so an entry's corrected p-values do not depend on
which other generators happened to share its run.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from . import __version__
from .cache import Cache, write_atomic
from .carried import conditions_digest, sets_path, write_sets
from .closest_pairs import figure_file
from .errors import DataError, SubmissionError
from .plan import Arm, TaskPlan, plan_task
from .protocol import PROTOCOL_VERSION, entry_references, run_regimes
from .registry import generator_class
from .samples import split_hash
from .schemas import RunResult
from .scoring import TaskPredictions, arm_predictions, score_predictions
from .submission import (
    CARD_FILE,
    GALLERY_DIR,
    GalleryImage,
    GeneratorCard,
    TaskSubmission,
    encode_predictions,
    load_card,
    prediction_key,
    task_file_name,
)
from .submit_quality import drafted_quality
from .synthetic import load_synthetic_set, write_grid
from .task_data import load_splits
from .validate import validate

GALLERY_IMAGES = 8


def _checked_arm(arm: Arm, result_arm, source: str) -> None:
    planned = [cell.key for cell in arm.cells]
    stored = [seed.cell for seed in result_arm.seeds]
    if planned != stored:
        raise DataError(f"{source}: the cells of {arm.generator} at ratio {arm.ratio:g} do not match what this "
                        f"cxrbench plans for the run's settings (planned {planned[:1]}..., stored {stored[:1]}...); "
                        f"rerun with this version and submit the new result")


def _predictions(plan_arms: list[Arm], cache: Cache) -> tuple[list, dict[str, np.ndarray]]:
    scored = [arm_predictions(arm, cache) for arm in plan_arms]
    arrays = {prediction_key(arm.generator, arm.ratio, seed, name): value
              for arm in scored for seed, _, predictions in arm.seeds for name, value in predictions.items()}
    return scored, arrays


def _carried_sets(plan: TaskPlan, generator: str, cache: Cache) -> bytes:
    """A third-party arm's synthetic sets as the run stored them, for CI to retrain the arm from (`carried`)."""
    sets = {}
    for arm in plan.arms:
        if arm.generator == generator:
            for cell in arm.cells:
                conditions = plan.task.conditions(plan.splits.train, cell.n_synthetic, seed=cell.seed)
                sets[conditions_digest(conditions)] = load_synthetic_set(cache.path("synthetic", cell.synthetic_key))[1]
    return write_sets(sets)


def _gallery(arm: Arm, cache: Cache, task: str, labels: list[str], folder: Path) -> list[GalleryImage]:
    """Small contact sheets of the seed-0 synthetic set, one per condition (each finding, no finding, mask)."""
    manifest, images = load_synthetic_set(cache.path("synthetic", arm.cells[0].synthetic_key))
    conditions = [e.condition for e in manifest.entries]
    groups: dict[str, list[int]] = {}
    for i, condition in enumerate(conditions):
        if condition.kind == "mask":
            groups.setdefault(f"{labels[0]} mask (outlined in red)", []).append(i)
            continue
        present = [name for name in labels if condition.labels.get(name)]
        for name in present or ["no finding"]:
            groups.setdefault(name, []).append(i)
    gallery = []
    for caption, members in sorted(groups.items()):
        chosen = members[:GALLERY_IMAGES]
        slug = "".join(c if c.isalnum() else "_" for c in caption.split(" (")[0].lower())
        file = f"{GALLERY_DIR}/{task}__{slug}.png"
        with tempfile.TemporaryDirectory() as tmp:
            write_grid(Path(tmp) / "grid.png", images[chosen], [conditions[i] for i in chosen], per_row=GALLERY_IMAGES,
                       max_images=GALLERY_IMAGES)
            write_atomic(folder / file, _small_png(Path(tmp) / "grid.png", grey=conditions[chosen[0]].kind != "mask"))
        gallery.append(GalleryImage(condition=caption, file=file))
    return gallery


def _small_png(path: Path, *, grey: bool) -> bytes:
    """The contact sheet at its native pixel size (write_grid doubles it), grey unless it shows red mask outlines."""
    from PIL import Image

    with Image.open(path) as sheet:
        small = sheet.resize((sheet.width // 2, sheet.height // 2), Image.NEAREST)
    buffer = io.BytesIO()
    (small.convert("L") if grey else small).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def submit(result_path: Path, card_path: Path, cache_root: Path, out_root: Path) -> list[Path]:
    """Publish the card's generator from a run as `out_root/<generator>/`; returns the task files written.

    The entry (with the folder's earlier files, if any) is drafted in a staging folder and validated
    there; only a valid entry replaces the published folder, so an off-protocol run publishes nothing.
    """
    card = load_card(card_path)
    final = out_root / card.name
    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_root, prefix=".staging-") as staging:
        folder = Path(staging) / card.name
        if final.exists():
            shutil.copytree(final, folder)
        written = draft(result_path, card, cache_root, folder)
        try:
            validate([folder], data_root=_load_result(result_path).config.data_root, cache_root=cache_root)
        except SubmissionError as error:  # named as the files would have been published, not the deleted draft
            raise SubmissionError([(file.replace(str(folder), str(final), 1), field, what)
                                   for file, field, what in error.problems]) from None
        if final.exists():
            final.rename(Path(staging) / "replaced")
        folder.rename(final)
    return [final / path.name for path in written]


def _load_result(result_path: Path) -> RunResult:
    """The run to publish, refused in one line when it is not a protocol run."""
    try:
        result = RunResult.model_validate_json(result_path.read_text())
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:300]
        raise DataError(f"{result_path} is not a readable cxrbench result: {reason}") from None
    if result.config.profile != "protocol":
        raise DataError(f"{result_path} is a run of the {result.config.profile} profile, a regression check for "
                        f"`cxrbench check`, not the protocol: submit a run without --profile")
    if result.config.first_seed != 0:
        raise DataError(f"{result_path} is a run from seed {result.config.first_seed}; the protocol's seeds start at "
                        f"0: submit a run without --first-seed")
    if result.config.condition_policy.changes():
        raise DataError(f"{result_path} is an exploratory run ({result.config.condition_policy.describe()}), not the "
                        f"protocol's conditions: submit a run without --label-conditions or --no-mask-transforms")
    return result


def draft(result_path: Path, card: GeneratorCard, cache_root: Path, folder: Path) -> list[Path]:
    """Write the entry into `folder` (card, one file per task and regime, gallery) without validating it."""
    result = _load_result(result_path)
    meta = generator_class(card.name).meta
    if card.name not in result.config.generators:
        raise DataError(f"{result_path}: generator {card.name!r} (from its card) is not in this run "
                        f"(it ran {', '.join(result.config.generators)})")
    references = [name for name in entry_references(meta) if name in result.config.generators]
    cache = Cache(cache_root)
    root = None if result.config.data_root is None else str(result.config.data_root)
    items, drafts = [], []
    for task_result in result.tasks:
        if not any(arm.generator == card.name for arm in task_result.arms):
            continue
        name, regime = task_result.task.name, task_result.regime
        config = result.config.model_copy(update={"tasks": [name], "generators": [card.name, *references]})
        size = run_regimes(task_result.task, config.regimes, config.train_size)[regime]
        plan = plan_task(name, regime, size, config, cache_root)
        stored = {(arm.generator, arm.ratio): arm for arm in [task_result.baseline, *task_result.arms]}
        own = [arm for arm in plan.arms if arm.generator == card.name]
        refs = [arm for arm in plan.arms if arm.generator != card.name and arm.ratio in {a.ratio for a in own}]
        for arm in [plan.baseline, *own, *refs]:
            _checked_arm(arm, stored[(arm.generator, arm.ratio)], str(result_path))
        try:
            (baseline, *scored), arrays = _predictions([plan.baseline, *own, *refs], cache)
        except FileNotFoundError as error:
            raise DataError(f"the cache {cache_root} lacks this run's predictions ({error.filename}); "
                            f"pass the --cache-dir the run used") from None
        items.append(TaskPredictions(plan.task, regime, plan.splits, baseline, scored[: len(own)], scored[len(own):],
                                     plan.task.subgroups(plan.splits.test, plan.data_root)))
        drafts.append((plan, arrays, own[0], refs, load_splits(name, root, size)))
    if not items:
        raise DataError(f"{result_path}: no task of this run has arms of {card.name}")
    written = []
    public_config = result.config.model_copy(update={"data_root": None})  # a path on the submitter's machine
    scored_run = score_predictions(items, n_boot=result.config.n_boot)
    stored_quality = {(t.task.name, t.regime): t.quality for t in result.tasks}
    for scored_task, (plan, arrays, first_arm, refs, splits) in zip(scored_run.tasks, drafts, strict=True):
        name = plan.task.meta.name
        quality = drafted_quality(plan, stored_quality[(name, plan.regime)], card.name, result.config, cache)
        submission = TaskSubmission(
            generator=card.name, verified=meta.verified, created=datetime.now(timezone.utc),
            cxrbench_version=__version__, protocol_version=PROTOCOL_VERSION, config=public_config,
            generators=[meta, *{generator_class(a.generator).meta.name: generator_class(a.generator).meta
                                for a in refs}.values()],
            split_hash=split_hash(splits), val_ids=splits.val.sample_ids.astype(str).tolist(),
            test_ids=splits.test.sample_ids.astype(str).tolist(),
            result=scored_task.model_copy(update={"quality": quality.quality}), predictions=encode_predictions(arrays),
            gallery=(_gallery(first_arm, cache, f"{name}__{plan.regime}", plan.task.meta.labels, folder)
                     if plan.task.redistributable else []),
            closest_pairs=None if quality.figure is None else figure_file(name, plan.regime))
        path = folder / task_file_name(plan.task.meta.suite, name, plan.regime)
        write_atomic(path, submission.model_dump_json(indent=1).encode())
        quality.write(path)
        if not meta.verified and plan.task.redistributable:
            write_atomic(sets_path(path), _carried_sets(plan, card.name, cache))
        written.append(path)
    write_atomic(folder / CARD_FILE, yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False).encode())
    return written
