"""`cxrbench check-generator`: the conformance checks a generator author runs first, before any benchmark run."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT_CACHE,
    CacheDir,
    DataRoot,
    Device,
    Format,
    GeneratorConfig,
    check_cache,
    console,
    fail,
    given_names,
    one_line_errors,
    read_generator_config,
)

STATUS_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def check_generator(
    name: Annotated[str, typer.Argument(help="The generator to check (a registered or entry-point name).")],
    task: Annotated[str | None, typer.Option(help="Task name(s), comma-separated (default: every task of the "
                                                  "embedded suite it serves).")] = None,
    count: Annotated[int | None, typer.Option(help="Images per check (default: the protocol's count at the task's "
                                                   "first ratio in its smallest regime).")] = None,
    generator_config: GeneratorConfig = None,
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE,
    device: Device = "cpu",
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Check a generator's contract on each task in its smallest regime: shape, dtype, finite values, range [0, 1],
    determinism for a seed, that it honours its conditions, and its speed. Exit 0: all pass; 1: a check failed."""
    from ..conformance import check_generator as run_checks

    if fmt is Format.markdown:
        fail("check-generator --format: table or json, not markdown")
    with one_line_errors():
        options = read_generator_config(generator_config)
        check_cache(cache_dir)
        report = run_checks(name, cache_dir, tasks=given_names(task, "--task"), count=count,
                            generator_config=options, data_root=data_root, device=device)
    if fmt is Format.json:
        typer.echo(report.model_dump_json(indent=1))
    else:
        console.print(_table(report))
        console.print(report.summary(), style="bold red" if report.failed else "green", highlight=False)
    raise typer.Exit(code=1 if report.failed else 0)


def _table(report):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"check-generator {report.generator}", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("task", "regime", "check", "result", "measured"):
        table.add_column(column, no_wrap=column != "measured")
    for c in report.checks:
        table.add_row(Text(c.task), Text(c.regime), Text(c.check), Text(c.status, style=STATUS_STYLE[c.status]),
                      Text(c.measured))  # Text: an exception's message is shown verbatim, brackets and all
    return table
