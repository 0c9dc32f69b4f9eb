"""The command line: `cxrbench run`, `cxrbench list`, `cxrbench report`.

Bad input of any kind the project knows ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from .errors import ConfigError, CxrbenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="cxrbench: do a generator's synthetic chest X-rays make downstream models better?")
console = Console(width=max(Console().width, 160))  # the results table needs ~150 columns
errors = Console(stderr=True)

DEFAULT_CACHE = Path(os.environ.get("CXRBENCH_CACHE", Path.home() / ".cache" / "cxrbench"))


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def _fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _split(value: str | None) -> list[str]:
    return [] if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _ratios(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(part) for part in _split(value)]
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {value!r}") from None


def _show(result, fmt: Format) -> None:
    from .report import markdown, rich_table

    if fmt is Format.json:
        typer.echo(result.model_dump_json(indent=1))
    elif fmt is Format.markdown:
        typer.echo(markdown(result), nl=False)
    else:
        console.print(rich_table(result))


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Bad settings and protocol errors end as one line and exit code 2, never a traceback."""
    try:
        yield
    except ValidationError as error:
        first = error.errors()[0]
        _fail(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except CxrbenchError as error:
        _fail(str(error))


def _generator_config(path: Path | None) -> dict:
    import yaml

    if path is None:
        return {}
    try:
        options = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read generator config {path}: {error}") from None
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ConfigError(f"generator config {path} must map generator names to option mappings")
    return options


@app.command()
def run(
    generator: Annotated[str, typer.Option("--generator", "-g", help="Generator name(s), comma-separated.")],
    task: Annotated[Optional[str], typer.Option(help="Task name(s), comma-separated (default: the suite's).")] = None,
    suite: Annotated[str, typer.Option(help="Suite whose tasks to run when --task is not given.")] = "embedded",
    ratios: Annotated[Optional[str], typer.Option(help="Synthetic per real image, e.g. 0.5,1,2.")] = None,
    seeds: Annotated[Optional[int], typer.Option(help="Seeds per arm (>= 2; default: the task's).")] = None,
    train_size: Annotated[Optional[int], typer.Option(help="Real training images (default: the task's).")] = None,
    data_root: Annotated[Optional[Path], typer.Option(help="Where real datasets live.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Stage cache (env CXRBENCH_CACHE).")] = DEFAULT_CACHE,
    out: Annotated[Optional[Path], typer.Option(help="Where to write the RunResult JSON.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for cells (default: one per core).")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples over test patients.")] = 2000,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    generator_config: Annotated[Optional[Path], typer.Option(
        help="YAML file of options per generator, e.g. `ldm_mask: {preset: tiny}`.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="How to print the result.")] = Format.table,
) -> None:
    """Run generators on a suite's tasks and print Δ against the real-only baseline."""
    from .registry import suite_tasks
    from .runner import run as run_benchmark
    from .schemas import RunConfig

    with _one_line_errors():
        config = RunConfig(tasks=_split(task) or suite_tasks(suite), generators=_split(generator),
                           ratios=_ratios(ratios), seeds=seeds, train_size=train_size, n_boot=n_boot,
                           data_root=data_root, device=device, generator_config=_generator_config(generator_config))
        names = "-".join(config.generators)
        out = out or Path("results") / f"{suite if task is None else '-'.join(config.tasks)}_{names}.json"
        result = run_benchmark(config, cache_dir, workers=workers or os.cpu_count() or 1, out=out,
                               show_progress=fmt is Format.table)
    _show(result, fmt)
    if fmt is Format.table:
        console.print(f"result written to {out} ({result.wall_seconds:.1f} s)")


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="tasks or generators")] = "all",
) -> None:
    """List the registered tasks and generators."""
    from .registry import generator_class, generator_names, task_class, task_names

    if what not in ("all", "tasks", "generators"):
        _fail(f"can list tasks or generators, not {what!r}")
    if what in ("all", "tasks"):
        metas = [task_class(name).meta for name in task_names()]
        console.print(_table("tasks", ["name", "suite", "kind", "metric", "version", "description"],
                             [[m.name, m.suite, m.kind, m.metric, m.version, m.description] for m in metas]))
    if what in ("all", "generators"):
        metas = [generator_class(name).meta for name in generator_names()]
        console.print(_table("generators", ["name", "role", "conditioning", "suites", "verified", "description"],
                             [[m.name, m.role, ",".join(m.conditioning) or "-", ",".join(m.suites or ["all"]),
                               "yes" if m.verified else "no", m.description] for m in metas]))


def _table(title: str, columns: list[str], rows: list[list[str]]):
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


@app.command()
def agreement(
    generator: Annotated[str, typer.Option("--generator", "-g", help="The generator to grade.")],
    task: Annotated[str, typer.Option(help="The task whose conditions it is asked for.")],
    seed: Annotated[int, typer.Option(help="Which seed's synthetic set to grade.")] = 0,
    data_root: Annotated[Optional[Path], typer.Option(help="Where real datasets live.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Stage cache (env CXRBENCH_CACHE).")] = DEFAULT_CACHE,
    generator_config: Annotated[Optional[Path], typer.Option(help="YAML file of options per generator.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out: Annotated[Optional[Path], typer.Option(help="Where to write the JSON.")] = None,
) -> None:
    """Measure whether a generator honours its conditions (a judge trained on real data grades its images)."""
    from rich.table import Table

    from .agreement import measure_agreement
    from .cache import write_atomic
    from .schemas import RunConfig

    with _one_line_errors():
        config = RunConfig(tasks=[task], generators=[generator], data_root=data_root, device=device,
                           generator_config=_generator_config(generator_config))
        result = measure_agreement(task, generator, cache_dir, synthetic_seed=seed, config=config, device=device)
    out = out or Path("results") / f"agreement_{task}_{generator}.json"
    write_atomic(out, result.model_dump_json(indent=1).encode())
    table = Table(title=f"{generator} on {task}: does the judge find what was asked? ({result.metric}, "
                        f"{result.n_images} images)")
    for column in ("", "matched", "shuffled", "real test"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("overall", f"{result.matched:.3f}", f"{result.shuffled:.3f}", f"{result.real_test:.3f}")
    for label, value in result.matched_per_label.items():
        table.add_row(label, f"{value:.3f}", f"{result.shuffled_per_label[label]:.3f}", "")
    console.print(table)
    console.print(f"written to {out}")


@app.command()
def review(
    generator: Annotated[str, typer.Option("--generator", "-g", help="The generator whose images to review.")],
    task: Annotated[str, typer.Option(help="The task whose conditions it was asked for.")],
    reviewer: Annotated[str, typer.Option(help="Your name, recorded with each verdict.")] = "",
    feedback: Annotated[Optional[Path], typer.Option(help="JSONL file verdicts are appended to.")] = None,
    train_size: Annotated[Optional[int], typer.Option(help="Real training images (as in the run).")] = None,
    data_root: Annotated[Optional[Path], typer.Option(help="Where real datasets live.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Stage cache (env CXRBENCH_CACHE).")] = DEFAULT_CACHE,
    generator_config: Annotated[Optional[Path], typer.Option(help="YAML file of options per generator.")] = None,
    port: Annotated[int, typer.Option(help="Port of the review page.")] = 8502,
) -> None:
    """Open a page to accept or reject a generator's synthetic images (seed 0); verdicts go to a JSONL file."""
    from .review import open_review_page, reviewed_set
    from .schemas import RunConfig

    with _one_line_errors():
        config = RunConfig(tasks=[task], generators=[generator], data_root=data_root, train_size=train_size,
                           generator_config=_generator_config(generator_config))
        set_dir = reviewed_set(task, generator, cache_dir, config)
    feedback = feedback or Path("reviews") / f"{task}_{generator}.jsonl"
    console.print(f"reviewing {set_dir}; verdicts go to {feedback}")
    raise typer.Exit(code=open_review_page(set_dir, feedback, reviewer, port))


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="A RunResult JSON written by `cxrbench run`.")],
    fmt: Annotated[Format, typer.Option("--format", help="table, json or markdown.")] = Format.table,
) -> None:
    """Print a stored result."""
    from .schemas import RunResult

    try:
        text = path.read_text()
    except OSError as error:
        _fail(f"cannot read {path}: {error.strerror or error}")
    try:
        result = RunResult.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        _fail(f"{path} is not a cxrbench result: field {'.'.join(map(str, first['loc']))}: {first['msg']}")
    _show(result, fmt)


@app.callback()
def _logging(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")



from .data_cli import data_app  # noqa: E402  (the sub-app imports helpers from this module lazily)

app.add_typer(data_app, name="data")
from . import submission_cli  # noqa: E402,F401  (registers submit, validate and leaderboard on `app`)
