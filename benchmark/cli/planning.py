"""`cxrbench plan`: what a run would compute, what the cache holds, and its price from measured figures."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT_CACHE,
    CacheDir,
    DataRoot,
    Device,
    FirstSeed,
    GeneratorConfig,
    Generators,
    LabelConditions,
    LabelConditionsOption,
    MaskTransforms,
    Profile,
    Quality,
    Ratios,
    Regimes,
    RunProfile,
    Seeds,
    Suite,
    Tasks,
    TrainSize,
    console,
    one_line_errors,
    run_config,
)


def plan(
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
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE,
    device: Device = "cpu",
    generator_config: GeneratorConfig = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the forecast as JSON, for scripts.")] = False,
) -> None:
    """Print the cells `cxrbench run` would compute with these options, which the cache already holds, the
    generator fits they need, and the CPU hours of what is missing, from measured figures. Trains and writes
    nothing."""
    from ..forecast import forecast

    with one_line_errors():
        config = run_config(generator=generator, task=task, suite=suite, ratios=ratios, seeds=seeds, regimes=regimes,
                            train_size=train_size, profile=profile, first_seed=first_seed,
                            label_conditions=label_conditions, mask_transforms=mask_transforms, quality=quality,
                            data_root=data_root, device=device, generator_config=generator_config)
        found = forecast(config, cache_dir)
    if as_json:
        typer.echo(found.model_dump_json(indent=1))
    else:
        show_forecast(found)


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    return f"{seconds / 3600:,.1f} h" if seconds >= 360 else f"{seconds / 60:,.1f} min"


def show_forecast(found) -> None:
    from rich.table import Table

    cells = Table(title=f"cells ({found.device})")
    for column in ("task", "regime", "generator", "ratio", "synthetic / cell", "cells", "cached", "to compute",
                   "CPU per cell", "CPU cells", "CPU sampling"):
        cells.add_column(column, justify="left" if column in ("task", "regime", "generator") else "right")
    for arm in found.arms:
        synthetic = f"{arm.n_synthetic:,}" if arm.n_synthetic else "-"
        cells.add_row(arm.task, arm.regime, arm.generator, f"{arm.ratio:g}" if arm.n_synthetic else "-", synthetic,
                      str(arm.cells), "unknown" if arm.cached is None else str(arm.cached), str(arm.to_compute),
                      _hours(arm.cell_seconds), _hours(arm.cells_seconds),
                      _hours(arm.sampling_total_seconds) if arm.synthetic_sets else "-")
    console.print(cells)
    if found.fits:
        fits = Table(title="generator fits")
        for column in ("task", "regime", "generator", "cached", "CPU"):
            fits.add_column(column)
        for fit in found.fits:
            fits.add_row(fit.task, fit.regime, fit.generator,
                         "unknown" if fit.cached is None else "yes" if fit.cached else "no",
                         "-" if fit.cached else "not measured")
        console.print(fits)
    for note in found.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"{found.cells} cells, {found.cached} cached, {found.to_compute} to compute: about "
                  f"{_hours(found.priced_seconds)} of CPU on {found.device} (one thread per cell)", highlight=False)
    if found.unpriced:
        console.print(f"not measured on {found.device}, so not in the estimate: {'; '.join(found.unpriced)}",
                      highlight=False)
