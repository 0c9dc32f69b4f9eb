"""`cxrbench leaderboard serve`: prints its URL once the page answers, and nothing else; stopping it (SIGTERM,
Ctrl-C, or its own death) stops the Streamlit server it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc; a zombie counts as gone)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Lines:
    """A stream's lines, read by a thread (a silent process must not hang the test)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._reader.start()

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r} within {timeout} s: {self.lines}"
            time.sleep(0.2)

    def all(self) -> list[str]:
        self._reader.join(timeout=30)
        return [line.strip() for line in self.lines if line.strip()]


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "Ctrl-C", "serve killed"])
def test_stopping_serve_stops_the_server_and_it_says_only_the_url(stop):
    port = _free_port()
    serve = subprocess.Popen([sys.executable, "-m", "cxrbench", "leaderboard", "serve", "--port", str(port),
                              "--submissions", str(SUBMISSIONS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    url, server, stdout, stderr = f"http://127.0.0.1:{port}/", [], _Lines(serve.stdout), _Lines(serve.stderr)
    try:
        stdout.wait_for(f"127.0.0.1:{port}", timeout=240)
        with urllib.request.urlopen(url + "_stcore/health", timeout=10) as health:  # answering when it says so
            assert health.status == 200
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
        server = _children(serve.pid)
        assert server, "serve started no server"
        os.kill(serve.pid, stop)
        serve.wait(timeout=60)
        deadline = time.monotonic() + 30
        while (_answers(port) or any(map(_alive, server))) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _answers(port) and not any(map(_alive, server)), "the server outlived serve"
    finally:
        for pid in [serve.pid, *server]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    # Streamlit acknowledges a SIGTERM with "Stopping..." whatever its settings (streamlit/web/server/server.py)
    assert stdout.all() in ([f"cxrbench leaderboard: {url} (Ctrl-C stops it)"],
                    [f"cxrbench leaderboard: {url} (Ctrl-C stops it)", "Stopping..."])
    assert stderr.all() == []  # no Streamlit warnings, no log lines, no traceback


@pytest.mark.reliability("bad_input")
def test_serve_on_a_taken_port_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "cxrbench", "leaderboard", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"error: --port {port}: cannot serve on 127.0.0.1:{port} (Address already in "
                                   f"use); choose another --port")
