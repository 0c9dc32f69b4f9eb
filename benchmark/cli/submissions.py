"""`cxrbench submit` and `cxrbench validate`: publish a run as a submission entry, and check entries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import DEFAULT_CACHE, SUBMISSIONS, console, one_line_errors


def submit(
    result: Annotated[Path, typer.Argument(help="A RunResult JSON written by `cxrbench run`.")],
    generator_yaml: Annotated[Path, typer.Option(help="The generator card (name, authors, code, training data, ...).")],
    cache_dir: Annotated[Path, typer.Option(
        help="The stage cache the run used (holds its predictions).")] = DEFAULT_CACHE,
    out: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
) -> None:
    """Validate the card's generator from a run and publish it as submissions/<generator>/ (nothing if invalid)."""
    from ..submit import submit as publish

    with one_line_errors():
        written = publish(result, generator_yaml, cache_dir, out)
    for path in written:
        console.print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB), valid")


def validate(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Submission folders or files (default: submissions/).")] = None,
    data_root: Annotated[Path | None, typer.Option(
        help="This machine's copy of the real datasets, for entries on them (env CXRBENCH_DATA_ROOT).",
        envvar="CXRBENCH_DATA_ROOT")] = None,
) -> None:
    """Recompute every number of the submissions and check them against the protocol; exit 2 on any problem."""
    from ..validate import validate as validate_entries

    with one_line_errors():
        folders = validate_entries(paths or [SUBMISSIONS], data_root)
    console.print(f"{len(folders)} submission(s) valid: {', '.join(f.name for f in folders)}")
