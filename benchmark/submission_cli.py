"""The CLI's submission commands: `cxrbench submit`, `cxrbench validate`, `cxrbench leaderboard build|serve`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import DEFAULT_CACHE, _one_line_errors, app, console

SUBMISSIONS = Path("submissions")

leaderboard_app = typer.Typer(no_args_is_help=True, help="Build and serve the leaderboard from submissions/.")
app.add_typer(leaderboard_app, name="leaderboard")


@app.command()
def submit(
    result: Annotated[Path, typer.Argument(help="A RunResult JSON written by `cxrbench run`.")],
    generator_yaml: Annotated[Path, typer.Option(help="The generator card (name, authors, code, training data, ...).")],
    cache_dir: Annotated[Path, typer.Option(help="The stage cache the run used (holds its predictions).")] = DEFAULT_CACHE,
    out: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
) -> None:
    """Validate the card's generator from a run and publish it as submissions/<generator>/ (nothing if invalid)."""
    from .submit import submit as publish

    with _one_line_errors():
        written = publish(result, generator_yaml, cache_dir, out)
    for path in written:
        console.print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB), valid")


@app.command("validate")
def validate_command(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Submission folders or files (default: submissions/).")] = None,
    data_root: Annotated[Optional[Path], typer.Option(help="This machine's copy of the real datasets, for entries on "
                                                           "them (env CXRBENCH_DATA_ROOT).", envvar="CXRBENCH_DATA_ROOT")] = None,
) -> None:
    """Recompute every number of the submissions and check them against the protocol; exit 2 on any problem."""
    from .validate import validate

    with _one_line_errors():
        folders = validate(paths or [SUBMISSIONS], data_root)
    console.print(f"{len(folders)} submission(s) valid: {', '.join(f.name for f in folders)}")


@leaderboard_app.command()
def build(
    submissions: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
    out: Annotated[Path, typer.Option(help="Table to write (.parquet or .json).")] = Path("results/leaderboard.parquet"),
) -> None:
    """Turn the submissions into one table: per (suite, task, generator, ratio, reference) Δ, CI, p, ..."""
    from cxrbench.leaderboard.table import build_table, write_table

    with _one_line_errors():
        table = build_table(submissions)
        write_table(table, out)
    console.print(f"{len(table)} rows from {table['generator'].nunique() if len(table) else 0} generator(s) -> {out}")


@leaderboard_app.command()
def serve(
    submissions: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8501,
) -> None:
    """Serve the Streamlit leaderboard on 127.0.0.1."""
    import cxrbench.leaderboard.app as leaderboard

    command = [sys.executable, "-m", "streamlit", "run", leaderboard.__file__, "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--", "--submissions", str(submissions.resolve())]
    raise typer.Exit(subprocess.call(command))
