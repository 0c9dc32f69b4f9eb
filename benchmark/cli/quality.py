"""`cxrbench agreement` and `cxrbench review`: does a generator honour its conditions, by a judge or by people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT_CACHE,
    CacheDir,
    DataRoot,
    Device,
    GeneratorConfig,
    Regime,
    check_cache,
    check_writable,
    console,
    given_names,
    one_line_errors,
    read_generator_config,
    write_result,
)


def agreement(
    generator: Annotated[str, typer.Option("--generator", "-g", help="The generator to grade.")],
    task: Annotated[str, typer.Option(help="The task whose conditions it is asked for.")],
    seed: Annotated[int, typer.Option(help="Which seed's synthetic set to grade.")] = 0,
    regime: Regime = None,
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE,
    generator_config: GeneratorConfig = None,
    device: Device = "cpu",
    out: Annotated[Path | None, typer.Option(help="Where to write the JSON.")] = None,
) -> None:
    """Measure whether a generator honours its conditions (a judge trained on real data grades its images)."""
    from rich.table import Table

    from .. import progress
    from ..agreement import measure_agreement
    from ..plan import checked_config
    from ..schemas import RunConfig

    out = out or Path("results") / f"agreement_{task}_{generator}.json"
    with one_line_errors():
        config = RunConfig(tasks=[task], generators=[generator], data_root=data_root, device=device,
                           regimes=given_names(regime, "--regime"),
                           generator_config=read_generator_config(generator_config))
        checked_config(config)
        check_writable(out)
        check_cache(cache_dir)
        with progress.showing(True):
            result = measure_agreement(task, generator, cache_dir, synthetic_seed=seed, config=config, device=device)
    table = Table(title=f"{generator} on {task}: does the judge find what was asked? ({result.metric}, "
                        f"{result.n_images} images)")
    for column in ("", "matched", "shuffled", "real test"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("overall", f"{result.matched:.3f}", f"{result.shuffled:.3f}", f"{result.real_test:.3f}")
    for label, value in result.matched_per_label.items():
        table.add_row(label, f"{value:.3f}", f"{result.shuffled_per_label[label]:.3f}", "")
    console.print(table)
    with one_line_errors():
        write_result(out, result, cache_dir)
    console.print(f"written to {out}")


def review(
    generator: Annotated[str, typer.Option("--generator", "-g", help="The generator whose images to review.")],
    task: Annotated[str, typer.Option(help="The task whose conditions it was asked for.")],
    reviewer: Annotated[str, typer.Option(help="Your name, recorded with each verdict.")] = "",
    feedback: Annotated[Path | None, typer.Option(help="JSONL file verdicts are appended to.")] = None,
    regime: Regime = None,
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE,
    generator_config: GeneratorConfig = None,
    port: Annotated[int, typer.Option(help="Port of the review page.")] = 8502,
    address: Annotated[str, typer.Option(help="Address the page listens on (0.0.0.0: every network; anyone who "
                                              "reaches it can add verdicts).")] = "127.0.0.1",
) -> None:
    """Open a page to accept or reject a generator's synthetic images (seed 0); verdicts go to a JSONL file."""
    from .. import progress
    from ..plan import checked_config
    from ..review import open_review_page, reviewed_set
    from ..schemas import RunConfig

    with one_line_errors():
        config = RunConfig(tasks=[task], generators=[generator], data_root=data_root,
                           regimes=given_names(regime, "--regime"),
                           generator_config=read_generator_config(generator_config))
        checked_config(config)
        check_cache(cache_dir)
        with progress.showing(True):
            set_dir = reviewed_set(task, generator, cache_dir, config)
    feedback = feedback or Path("reviews") / f"{task}_{generator}.jsonl"
    console.print(f"reviewing {set_dir}; verdicts go to {feedback}")
    raise typer.Exit(code=open_review_page(set_dir, feedback, reviewer, port, address))
