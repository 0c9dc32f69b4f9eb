"""`cxrbench leaderboard build|serve`: the submissions as one table, and the Streamlit app that shows it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
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


STREAMLIT_QUIET = ("--server.headless", "true", "--browser.gatherUsageStats", "false", "--logger.level", "error",
                   "--logger.hideWelcomeMessage", "true", "--client.toolbarMode", "minimal",
                   "--server.fileWatcherType", "none")
"""Streamlit's own settings for a server that prints nothing but errors: its welcome and URL lines (serve prints the
URL itself, once the page answers), its INFO lines and its warnings go; its errors stay on stderr."""
READY_TIMEOUT = 180
"""Seconds the server may take to answer (its first start imports pandas and altair; minutes on a busy machine)."""


@leaderboard_app.command()
def serve(
    submissions: Annotated[Path, typer.Option(help="The submissions folder.")] = SUBMISSIONS,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8501,
) -> None:
    """Serve the Streamlit leaderboard on 127.0.0.1; print its URL once the page answers. Ctrl-C, a SIGTERM or the
    end of this process stops the server."""
    from importlib.util import find_spec

    app = find_spec("cxrbench.leaderboard.app").origin  # found, not imported: importing a page runs Streamlit bare
    url = f"http://127.0.0.1:{port}/"
    with one_line_errors():
        _check_port_free(port)
        command = [sys.executable, "-m", "streamlit", "run", app, "--server.address", "127.0.0.1", "--server.port",
                   str(port), *STREAMLIT_QUIET, "--", "--submissions", str(submissions.resolve())]
        server = subprocess.Popen(command, start_new_session=True, preexec_fn=partial(_die_with, os.getpid()))
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _exit_on_signal)
        try:
            _wait_until_ready(server, url)
            console.print(f"cxrbench leaderboard: {url} (Ctrl-C stops it)", highlight=False, markup=False)
            code = server.wait()
        finally:
            _stop(server)
    raise typer.Exit(code)


def _check_port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: a closed port's TIME_WAIT
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise ConfigError(f"--port {port}: cannot serve on 127.0.0.1:{port} ({error.strerror or error}); choose "
                              f"another --port") from None


def _die_with(parent: int) -> None:
    """The server's pre-exec: the kernel kills it when this process dies, even by SIGKILL; if this process died
    before the request (the server, adopted, would serve on), the server dies at once."""
    from ..executor import die_with_parent

    die_with_parent()
    if os.getppid() != parent:
        os._exit(1)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through serve's `finally`, which stops the server


def _wait_until_ready(server: subprocess.Popen, url: str) -> None:
    """Until the server's health endpoint and page answer; a server that ended first is an error (its own is on
    stderr above)."""
    import time
    import urllib.request

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ConfigError(f"the leaderboard server stopped before it answered (exit code {server.returncode})")
        try:
            for path in ("_stcore/health", ""):
                with urllib.request.urlopen(url + path, timeout=2):
                    pass
            return
        except OSError:
            time.sleep(0.3)
    raise ConfigError(f"the leaderboard server did not answer at {url} within {READY_TIMEOUT} s")


def _stop(server: subprocess.Popen) -> None:
    """End the server's whole process group: SIGTERM, then SIGKILL for whatever is still there 10 s later."""
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, signum)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
