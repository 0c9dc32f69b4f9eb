"""`cxrbench leaderboard build|serve`: the submissions as one table, and the Streamlit app that shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import SUBMISSIONS, console, one_line_errors

leaderboard_app = typer.Typer(no_args_is_help=True, help="Build and serve the leaderboard from submissions/.")


@leaderboard_app.command()
def build(
    submissions: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
    out: Annotated[Path, typer.Option(help="Table to write (.parquet or .json).")] = Path(
        "results/leaderboard.parquet"),
) -> None:
    """Turn the submissions into one table: per (suite, task, regime, generator, ratio, reference) Δ, CI, verdict.

    An entry that cannot be read is left out and named; the exit code is then 2 (the table of the rest is written)."""
    from cxrbench.errors import SubmissionError
    from cxrbench.leaderboard.table import build_table, read_board, write_table

    with one_line_errors():
        board = read_board(submissions)
        table = build_table(board.entries)
        write_table(table, out)
        if board.refused:
            raise SubmissionError([problem for problems in board.refused.values() for problem in problems])
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
