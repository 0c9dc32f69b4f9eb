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
from typer.core import TyperGroup

from ..registry import COMMAND_GROUPS, load_target
from . import calibration, checking, conformance, planning, quality, running, submissions
from .card import card_app
from .common import fail
from .leaderboard import leaderboard_app

UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
"""Click's usage error, of whichever click typer runs on (recent typer vendors its own copy)."""


class OneLineUsageErrors(TyperGroup):
    """Click's usage errors (a value of the wrong type, an unknown option or command) in one line, exit code 2,
    like every other bad input, instead of a usage block in a box."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except UsageError as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # click >= 8.2 shows the help this way
                raise
            command = (error.ctx or ctx).command_path
            fail(f"{command}: {' '.join(error.format_message().split())} (see {command} --help)")


app = typer.Typer(cls=OneLineUsageErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="cxrbench: do a generator's synthetic chest X-rays make downstream models better?")

app.command()(running.run)
app.command()(planning.plan)
app.command("list")(running.list_)
app.command()(running.report)
app.command("check-generator")(conformance.check_generator)
app.command()(quality.agreement)
app.command()(quality.review)
app.command()(calibration.calibrate)
app.command()(submissions.submit)
app.command()(submissions.validate)
app.command()(submissions.verify)
app.command()(checking.check)
app.add_typer(card_app, name="card")
app.add_typer(leaderboard_app, name="leaderboard")
for name, target in COMMAND_GROUPS.items():
    app.add_typer(load_target(target), name=name)


@app.callback()
def _logging(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
