"""`cxrbench calibrate`: measure the primary analysis' false-positive rate and coverage on a simulated task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT_CACHE,
    CacheDir,
    check_cache,
    check_writable,
    console,
    given_names,
    one_line_errors,
    write_result,
)


def calibrate(
    task: Annotated[str, typer.Option(help="A simulated (embedded-suite) task.")],
    regime: Annotated[str, typer.Option(help="The task's regime.")] = "scarce",
    controls: Annotated[str, typer.Option(help="Controls whose true Δ to cover, comma-separated.")] = "oracle",
    seeds: Annotated[int, typer.Option(help="Seeds per arm (split into groups of --group-size).")] = 40,
    group_size: Annotated[int, typer.Option(help="Seeds per compared group: the protocol's seed count.")] = 5,
    fresh_patients: Annotated[int, typer.Option(help="New patients whose studies estimate the true Δ.")] = 4000,
    cache_dir: CacheDir = DEFAULT_CACHE,
    workers: Annotated[int, typer.Option(help="Worker processes (default: one per core).")] = 0,
    out: Annotated[Path | None, typer.Option(help="Where to write the JSON.")] = None,
) -> None:
    """A/A false-positive rate of each interval, and how often each covers a control's true Δ."""
    from rich.table import Table

    from ..calibration import calibrate as measure

    out = out or Path("results") / f"calibration_{task}_{regime}.json"
    with one_line_errors():
        check_writable(out)
        check_cache(cache_dir)
        result = measure(task, regime, given_names(controls, "--controls"), seeds=seeds, group_size=group_size,
                         cache_root=cache_dir, workers=workers or os.cpu_count() or 1, fresh_patients=fresh_patients)
    table = Table(title=f"{task} · {regime}: {result.seeds} seeds in groups of {group_size}; true Δ from "
                        f"{result.fresh_test_images} fresh test images")
    for column in ("", "primary", "t over seeds", "bootstrap over patients"):
        table.add_column(column, justify="left" if not column else "right")
    rates = result.aa_false_positive_rate
    table.add_row(f"A/A false positives ({result.aa_comparisons} pairs)", f"{rates.primary:.3f}",
                  f"{rates.t_seeds:.3f}", f"{rates.bootstrap_patients:.3f}")
    for control in result.controls:
        c = control.coverage
        table.add_row(f"{control.control} coverage (true Δ {control.true_delta:+.4f}, {control.intervals} intervals)",
                      f"{c.primary:.3f}", f"{c.t_seeds:.3f}", f"{c.bootstrap_patients:.3f}")
    console.print(table)
    with one_line_errors():
        write_result(out, result, cache_dir)
    console.print(f"written to {out}")
