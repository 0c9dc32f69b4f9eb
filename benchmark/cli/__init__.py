"""The command line, assembled here from one module per group of commands.

Each module defines plain functions and imports only `common`; this root registers them on one
Typer app (the shape of lm-evaluation-harness's subcommands), so no command module imports another.
Command groups that belong to a task family (`cxrbench data` for the real datasets) come from the
registry. Bad input of any kind the project knows ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ..registry import COMMAND_GROUPS, load_target
from . import calibration, quality, running, submissions
from .leaderboard import leaderboard_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="cxrbench: do a generator's synthetic chest X-rays make downstream models better?")

app.command()(running.run)
app.command("list")(running.list_)
app.command()(running.report)
app.command()(quality.agreement)
app.command()(quality.review)
app.command()(calibration.calibrate)
app.command()(submissions.submit)
app.command()(submissions.validate)
app.command()(submissions.verify)
app.add_typer(leaderboard_app, name="leaderboard")
for name, target in COMMAND_GROUPS.items():
    app.add_typer(load_target(target), name=name)


@app.callback()
def _logging(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
