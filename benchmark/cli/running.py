"""`cxrbench run`, `cxrbench list` and `cxrbench report`: compute a result, see what exists, print a stored result."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from .common import (
    DEFAULT_CACHE,
    CacheDir,
    DataRoot,
    Device,
    Executor,
    ExecutorKind,
    Format,
    GeneratorConfig,
    RayAddress,
    check_cache,
    check_writable,
    console,
    fail,
    given_names,
    one_line_errors,
    parse_ratios,
    ray_cluster,
    read_generator_config,
    show_result,
    write_result,
)


class RunProfile(str, Enum):
    protocol = "protocol"
    smoke = "smoke"


class LabelConditions(str, Enum):
    multi = "multi"
    single = "single"


def run(
    generator: Annotated[str, typer.Option("--generator", "-g", help="Generator name(s), comma-separated.")],
    task: Annotated[str | None, typer.Option(help="Task name(s), comma-separated (default: the suite's).")] = None,
    suite: Annotated[str, typer.Option(help="Suite whose tasks to run when --task is not given.")] = "embedded",
    ratios: Annotated[str | None, typer.Option(help="Synthetic per real image, e.g. 0.5,1,2.")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per arm (>= 2; default: the task's).")] = None,
    regimes: Annotated[str | None, typer.Option(help="The tasks' regimes to run, comma-separated, e.g. scarce "
                                                    "(default: all of them).")] = None,
    train_size: Annotated[int | None, typer.Option(help="Real training images, outside the protocol's regimes "
                                                       "(instead of --regimes).")] = None,
    profile: Annotated[RunProfile, typer.Option(help="protocol, or smoke: each task's fixed smoke settings (fewer "
                                                 "seeds, the scarce regime), for `cxrbench check`; never submitted.")
                       ] = RunProfile.protocol,
    first_seed: Annotated[int, typer.Option(help="The arms' first seed (seeds first_seed, first_seed + 1, ...); "
                                                 "another start repeats a check on new seeds.")] = 0,
    label_conditions: Annotated[LabelConditions, typer.Option(
        help="multi: the protocol's label conditions (real label vectors); single: at most one finding each "
             "(exploratory, never submitted).")] = LabelConditions.multi,
    mask_transforms: Annotated[bool, typer.Option(
        help="Randomly transform the real masks of mask conditions (the protocol's); --no-mask-transforms: the masks "
             "as they are (exploratory, never submitted).")] = True,
    quality: Annotated[bool | None, typer.Option(
        "--quality/--no-quality", show_default=False,
        help="Measure each synthetic arm's fidelity, memorisation and re-identification (docs/fidelity.md); "
             "--no-quality: the Δs alone. Default: measured in a protocol run, not in a smoke run.")] = None,
    feature_extractor: Annotated[str, typer.Option(
        help="The quality numbers' feature space: in_domain (the task's recipe trained on its real data), "
             "xrv:<local torchxrayvision DenseNet weights> or hf:<local Hugging Face model folder>.")] = "in_domain",
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE,
    out: Annotated[Path | None, typer.Option(help="Where to write the RunResult JSON.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for cells (default: one per core).")] = 0,
    executor: Executor = ExecutorKind.local,
    ray_address: RayAddress = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples over test patients.")] = 2000,
    device: Device = "cpu",
    generator_config: GeneratorConfig = None,
    fmt: Annotated[Format, typer.Option("--format", help="How to print the result.")] = Format.table,
) -> None:
    """Run generators on a suite's tasks in every regime and print each comparison's verdict."""
    from ..errors import ConfigError
    from ..plan import checked_config
    from ..registry import suite_tasks
    from ..runner import run as run_benchmark
    from ..schemas import RunConfig

    with one_line_errors():
        fixed = [option for option, value in (("--regimes", regimes), ("--train-size", train_size), ("--seeds", seeds),
                                              ("--ratios", ratios)) if value is not None]
        if profile is RunProfile.smoke and fixed:
            raise ConfigError(f"--profile smoke fixes each task's regimes, seeds and ratios; drop {', '.join(fixed)}")
        config = RunConfig(tasks=given_names(task, "--task") or suite_tasks(suite),
                           generators=given_names(generator, "--generator"), ratios=parse_ratios(ratios), seeds=seeds,
                           regimes=given_names(regimes, "--regimes"), train_size=train_size, n_boot=n_boot,
                           first_seed=first_seed, profile=profile.value, data_root=data_root, device=device,
                           label_conditions=label_conditions.value, mask_transforms=mask_transforms,
                           quality=quality, feature_extractor=feature_extractor,
                           generator_config=read_generator_config(generator_config))
        names = "-".join(config.generators)
        suffix = "_smoke" if config.profile == "smoke" else ""
        out = out or Path("results") / f"{suite if task is None else '-'.join(config.tasks)}_{names}{suffix}.json"
        config = checked_config(config)  # names and options first; then the disks, before the work, not after it
        check_writable(out)
        check_cache(cache_dir)
        result = run_benchmark(config, cache_dir, workers=workers or os.cpu_count() or 1,
                               show_progress=fmt is Format.table, ray=ray_cluster(executor, ray_address, cache_dir))
        show_result(result, fmt)
        write_result(out, result, cache_dir)
    if fmt is Format.table:
        console.print(f"result written to {out} ({result.wall_seconds:.1f} s)")


def list_(
    what: Annotated[str, typer.Argument(help="tasks or generators")] = "all",
) -> None:
    """List the registered tasks and generators."""
    from ..registry import failed_plugins, generator_class, generator_names, task_class, task_names

    if what not in ("all", "tasks", "generators"):
        fail(f"can list tasks or generators, not {what!r}")
    if what in ("all", "tasks"):
        metas = [task_class(name).meta for name in task_names()]
        console.print(_table("tasks", ["name", "suite", "kind", "metric", "version", "description"],
                             [[m.name, m.suite, m.kind, m.metric, m.version, m.description] for m in metas]))
    if what in ("all", "generators"):
        metas = [generator_class(name).meta for name in generator_names()]
        console.print(_table("generators", ["name", "role", "conditioning", "suites", "verified", "description"],
                             [[m.name, m.role, ",".join(m.conditioning) or "-", ",".join(m.suites or ["all"]),
                               "yes" if m.verified else "no", m.description] for m in metas]))
        failed = failed_plugins()
        if failed:
            console.print(_table("plugins that failed to load (skipped)", ["entry point", "target", "distribution",
                                                                           "error"],
                                 [[f.entry_point, f.target, f.distribution, f.error] for f in failed]))


def _table(title: str, columns: list[str], rows: list[list[str]]):
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def report(
    path: Annotated[Path, typer.Argument(help="A RunResult JSON written by `cxrbench run`.")],
    fmt: Annotated[Format, typer.Option("--format", help="table, json or markdown.")] = Format.table,
) -> None:
    """Print a stored result."""
    from ..protocol import PROTOCOL_VERSION, RESULT_SCHEMA_VERSION
    from ..schemas import RunResult

    try:
        text = path.read_text()
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}")
    try:
        version = json.loads(text).get("schema_version")
    except (ValueError, AttributeError):
        version = None
    if version is not None and version != RESULT_SCHEMA_VERSION:
        fail(f"{path} is a result of schema {version} (this cxrbench reads schema {RESULT_SCHEMA_VERSION}, protocol "
             f"{PROTOCOL_VERSION}): rerun it with this cxrbench, whose cache keeps what did not change")
    try:
        result = RunResult.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        fail(f"{path} is not a cxrbench result: field {'.'.join(map(str, first['loc']))}: {first['msg']}")
    show_result(result, fmt)
