"""`cxrbench run`, `cxrbench list` and `cxrbench report`: compute a result, see what exists, print a stored result."""

from __future__ import annotations

import json
import os
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
    FirstSeed,
    Format,
    GeneratorConfig,
    Generators,
    LabelConditions,
    LabelConditionsOption,
    MaskTransforms,
    Profile,
    Quality,
    Ratios,
    RayAddress,
    Regimes,
    RunProfile,
    Seeds,
    Suite,
    Tasks,
    TrainSize,
    check_cache,
    check_writable,
    console,
    fail,
    one_line_errors,
    ray_cluster,
    run_config,
    show_result,
    write_result,
)


def run(
    generator: Generators,
    task: Tasks = None,
    suite: Suite = "embedded",
    ratios: Ratios = None,
    seeds: Seeds = None,
    regimes: Regimes = None,
    train_size: TrainSize = None,
    profile: Profile = RunProfile.protocol,
    first_seed: FirstSeed = 0,
    label_conditions: LabelConditionsOption = LabelConditions.multi,
    mask_transforms: MaskTransforms = True,
    quality: Quality = None,
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
    from ..plan import checked_config
    from ..runner import run as run_benchmark

    with one_line_errors():
        config = run_config(generator=generator, task=task, suite=suite, ratios=ratios, seeds=seeds, regimes=regimes,
                            train_size=train_size, profile=profile, first_seed=first_seed,
                            label_conditions=label_conditions, mask_transforms=mask_transforms, quality=quality,
                            data_root=data_root, device=device, generator_config=generator_config, n_boot=n_boot,
                            feature_extractor=feature_extractor)
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
