"""`cxrbench data fetch NAME` and `cxrbench data verify [NAME]`: get and check local copies of the open datasets."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from cxrbench.cli.common import console, fail, one_line_errors

data_app = typer.Typer(no_args_is_help=True, help="Fetch or verify local copies of the open datasets.")

DataRoot = Annotated[Path | None, typer.Option(help="Folder holding the datasets (env CXRBENCH_DATA_ROOT).",
                                                   envvar="CXRBENCH_DATA_ROOT")]


def _advance(bar, task, done: int, total: int | None) -> None:
    bar.update(task, completed=done, total=total or None)


def _progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(f"[bold]{description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)


@data_app.command()
def fetch(name: Annotated[str, typer.Argument(help="pneumonia-kermany or covid-lungs")],
          data_root: DataRoot = None) -> None:
    """Download an open dataset from its public source into DATA_ROOT/NAME (needs a network)."""
    from .copies import fetch as fetch_copy

    if data_root is None:
        fail("say where to put it: --data-root DIR (or CXRBENCH_DATA_ROOT)")
    with one_line_errors(), _progress_bar(f"fetching {name}") as bar:
        task = bar.add_task("download", total=None)
        target = fetch_copy(name, data_root, progress=partial(_advance, bar, task))
    console.print(f"unpacked into {target}")


@data_app.command()
def verify(name: Annotated[str | None, typer.Argument(help="One dataset (default: every open one present).")] = None,
           data_root: DataRoot = None) -> None:
    """Decode every image of a local copy, count them, hash each split's image list and every file's content."""
    from rich.table import Table

    from .base import data_root as resolve_root
    from .base import named
    from .copies import OPEN_DATASETS
    from .copies import verify as verify_copy

    root = resolve_root(data_root)
    names = [name] if name else [n for n in OPEN_DATASETS if root is not None and (root / n).is_dir()]
    table = Table(title=f"open datasets under {root}")
    for column in ("dataset", "train", "val", "test", "split lists (sha256, first 12)", "files skipped",
                   "constant images", "known copy"):
        table.add_column(column)
    with one_line_errors():
        if not names:
            from cxrbench.errors import DataError

            raise DataError(f"no open dataset under {root}; expected one of {', '.join(OPEN_DATASETS)} "
                            "(pass --data-root DIR or set CXRBENCH_DATA_ROOT)")
        for dataset in names:
            with _progress_bar(f"decoding {dataset}") as bar:
                images = bar.add_task("images", total=None)
                report = verify_copy(dataset, root, progress=partial(_advance, bar, images))
            table.add_row(dataset, *(str(report.counts[s]) for s in ("train", "val", "test")),
                          " ".join(report.hashes[s][:12] for s in ("train", "val", "test")),
                          str(len(report.skipped)), str(len(report.constant)),
                          report.known_copy or "not a known copy (a subset, another release or altered files)")
            if report.constant:
                console.print(f"{dataset}: {len(report.constant)} constant image(s), left out of every run: "
                              f"{named(list(report.constant))}", markup=False)
    console.print(table)
