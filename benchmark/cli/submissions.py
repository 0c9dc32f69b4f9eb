"""`cxrbench submit` and `cxrbench validate`: publish a run as a submission entry, and check entries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT_CACHE,
    SUBMISSIONS,
    CacheDir,
    Executor,
    ExecutorKind,
    RayAddress,
    check_cache,
    console,
    one_line_errors,
    ray_cluster,
    split_names,
)


def submit(
    result: Annotated[Path, typer.Argument(help="A RunResult JSON written by `cxrbench run`.")],
    generator_yaml: Annotated[Path, typer.Option(help="The generator card (name, authors, code, training data, ...).")],
    cache_dir: Annotated[Path, typer.Option(
        help="The stage cache the run used (holds its predictions).")] = DEFAULT_CACHE,
    out: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
) -> None:
    """Validate the card's generator from a run and publish it as submissions/<generator>/ (nothing if invalid)."""
    from ..registry import task_class
    from ..submission import load_task_submission
    from ..submit import submit as publish
    from ..verification import MEANING, TO_RECOMPUTED, file_level

    with one_line_errors():
        written = publish(result, generator_yaml, cache_dir, out)
    levels = {}
    for path in written:
        entry = load_task_submission(path)
        levels[path] = file_level(path, entry, task_class(entry.task).public_data)
        console.print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB), valid, {levels[path]}", highlight=False)
    for shown in dict.fromkeys(levels.values()):
        console.print(f"{shown}: {MEANING[shown]} {TO_RECOMPUTED[shown]}".rstrip(), highlight=False, markup=False)


EntryPaths = Annotated[list[Path] | None, typer.Argument(
    help="Submission folders, folders of them, or task files (default: submissions/).")]
EntryDataRoot = Annotated[Path | None, typer.Option(
    help="This machine's copy of the real datasets, for entries on them (env CXRBENCH_DATA_ROOT).",
    envvar="CXRBENCH_DATA_ROOT")]


def validate(paths: EntryPaths = None, data_root: EntryDataRoot = None, cache_dir: Annotated[Path, typer.Option(
        help="Where CI keeps the feature extractor and verifier it recomputes quality numbers with (env "
             "CXRBENCH_CACHE).")] = DEFAULT_CACHE) -> None:
    """Recompute every number of the submissions and check them against the protocol; exit 2 on any problem."""
    from ..validate import validate as validate_entries

    with one_line_errors():
        check_cache(cache_dir)
        folders = validate_entries(paths or [SUBMISSIONS], data_root, cache_dir)
    console.print(f"{len(folders)} submission(s) valid: {', '.join(f.name for f in folders)}")


def verify(
    paths: EntryPaths = None,
    data_root: EntryDataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE,
    seeds: Annotated[str | None, typer.Option(
        help="Retrain only these seeds, comma-separated: a quick local check (CI retrains every seed).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for cells (default: one per core).")] = 0,
    executor: Executor = ExecutorKind.local,
    ray_address: RayAddress = None,
) -> None:
    """Validate the entries, then retrain every cell CI can reach with the protocol's code and require the
    entries' predictions to match; print each file's verification level."""
    from ..errors import ConfigError
    from ..recompute import verify as verify_entries

    with one_line_errors():
        check_cache(cache_dir)
        try:
            chosen = None if seeds is None else [int(seed) for seed in split_names(seeds)]
        except ValueError:
            raise ConfigError(f"--seeds must be comma-separated seed numbers, e.g. 0,1; got {seeds!r}") from None
        ray = ray_cluster(executor, ray_address, cache_dir)
        checked = verify_entries(paths or [SUBMISSIONS], cache_dir, data_root=data_root, seeds=chosen,
                                 workers=workers or os.cpu_count() or 1, ray=ray)
    for item in checked:
        console.print(f"{item.path}: {item.level} ({item.cells} cells retrained, largest difference "
                      f"{item.largest_difference:.2g})", highlight=False, markup=False)
