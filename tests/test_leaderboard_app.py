"""The leaderboard: the table from submissions, the Streamlit app headless (AppTest) and in a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from cxrbench.leaderboard.table import build_table, read_board, write_table
from tests.leaderboard_app import APP, open_app

REPO = Path(__file__).resolve().parents[1]
SUBMISSIONS = REPO / "submissions"

pytestmark = pytest.mark.skipif(not (SUBMISSIONS / "oracle" / "generator.yaml").exists(),
                                reason="the committed submissions are missing")


def test_table_has_one_row_per_comparison(tmp_path):
    table = build_table(read_board(SUBMISSIONS).entries)
    assert {"oracle", "noise", "classic_aug", "real_extra"} <= set(table["generator"])
    assert not table.duplicated(["suite", "task", "regime", "generator", "ratio", "reference"]).any()
    oracle = table[(table["generator"] == "oracle") & (table["task"] == "phantom_cls")]
    assert set(oracle["regime"]) == {"scarce", "full"} and set(oracle["verdict"]) == {"helps"}
    assert (oracle["ci_low"] <= oracle["delta"]).all() and (oracle["delta"] <= oracle["ci_high"]).all()
    write_table(table, tmp_path / "board.parquet")
    assert pd.read_parquet(tmp_path / "board.parquet").equals(table)


@pytest.fixture()
def app(monkeypatch) -> AppTest:
    return open_app(monkeypatch, SUBMISSIONS)


PAGES = {"overview": "Overview", "ranking": "Ranking", "comparison": "Comparison", "generator": "Generator",
         "protocol": "Protocol and statistics"}


def test_every_page_renders(app):
    assert app.sidebar.radio(key="page").options == list(PAGES.values())
    for page in PAGES:
        app.sidebar.radio(key="page").set_value(page).run()
        assert not app.exception, (page, app.exception)
        assert app.title, page


def test_filters_change_the_table(app):
    app.sidebar.radio(key="page").set_value("ranking").run()
    before = app.dataframe[0].value
    app.sidebar.multiselect(key="conditioning").set_value(["text"]).run()
    only_text = app.dataframe[0].value
    table = build_table(read_board(SUBMISSIONS).entries)
    text_conditioned = set(table[table["conditioning"].map(lambda value: "text" in value.split(","))]["generator"])
    assert "noise" in set(only_text["generator"]) <= text_conditioned and len(only_text) < len(before)
    app.sidebar.multiselect(key="conditioning").set_value(["label", "mask", "text"]).run()
    app.sidebar.selectbox(key="task").set_value("phantom_seg").run()
    scarce = app.dataframe[0].value
    assert not scarce.equals(before)
    assert app.sidebar.selectbox(key="regime").options == ["scarce", "full"]  # smallest first
    app.sidebar.selectbox(key="regime").set_value("full").run()
    assert not app.dataframe[0].value.equals(scarce) and "verdict" in scarce.columns


def test_generator_page_shows_card_seeds_and_gallery(app):
    app.sidebar.radio(key="page").set_value("generator").run()
    app.sidebar.selectbox(key="generator").set_value("oracle").run()
    card = app.dataframe[0].value
    assert "cxrbench maintainers" in card["value"].tolist()
    seeds = app.dataframe[2].value
    assert {f"seed {i}" for i in range(5)} <= set(seeds.columns)
    assert len(app.get("image")) >= 2


def test_generator_page_says_why_real_data_entries_have_no_images(app):
    app.sidebar.radio(key="page").set_value("generator").run()
    app.sidebar.selectbox(key="generator").set_value("classic_aug").run()
    notes = [c.value for c in app.caption if "no images" in c.value]
    assert len(notes) == 4 and all("the datasets may not be redistributed" in n for n in notes)  # open tasks x regimes
    assert len(app.get("image")) >= 2  # its embedded tasks keep their gallery


def test_submission_text_is_shown_as_typed(tmp_path, monkeypatch):
    folder = tmp_path / "oracle"
    shutil.copytree(SUBMISSIONS / "oracle", folder)
    card = folder / "generator.yaml"
    raw = "**not bold** [link](x) # no heading"
    card.write_text(yaml.safe_dump({**yaml.safe_load(card.read_text()), "description": raw}))
    at = open_app(monkeypatch, tmp_path, {"page": "generator"})
    assert at.text[0].value == raw
    assert not at.exception


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BROWSER_VIEWS = {  # screenshot name: (the URL's query, text the page shows once drawn to its end)
    "leaderboard": ("", "Download this table"),
    "ranking": ("?page=ranking&suite=embedded&task=phantom_seg&regime=full", "Δ against the synthetic ratio"),
    "comparison": ("?page=comparison&first=oracle&second=classic_aug", "Download this table"),
}
DRAWN_BYTES = 40_000
"""A drawn page's screenshot is larger (about 90 kB to 170 kB); Streamlit's loading skeleton is 8 kB to 15 kB."""
PATIENCE = 300
"""Seconds a view may take to be drawn: the first load imports the app's modules on the server, and every load is
a new session whose page a loaded machine draws slowly (headless Chromium's virtual time does not wait for it)."""


def _browse(flags: list[str], url: str, expected: str, shot: Path) -> str:
    """The page's DOM once it shows `expected`, and its screenshot once drawn; each try is a new browser session."""
    deadline = time.monotonic() + PATIENCE
    while True:
        dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        if expected in dom or time.monotonic() > deadline:
            break
        time.sleep(3)
    while True:
        subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
        if (shot.is_file() and shot.stat().st_size > DRAWN_BYTES) or time.monotonic() > deadline:
            return dom
        time.sleep(3)


@pytest.mark.slow
def test_real_browser_shows_the_leaderboard_and_its_permalinks(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium)")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false", "--",
         "--submissions", str(SUBMISSIONS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, doms = f"http://127.0.0.1:{port}/", {}
    shots = Path(os.environ.get("CXRBENCH_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with tempfile.TemporaryDirectory() as profile:
            flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                     "--virtual-time-budget=60000", "--window-size=1400,1100"]
            for name, (query, expected) in BROWSER_VIEWS.items():
                doms[name] = _browse(flags, url + query, expected, shots / f"{name}.png")
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name, (_, expected) in BROWSER_VIEWS.items():
        assert expected in doms[name] and "oracle" in doms[name], name
        assert "This link" not in doms[name], name  # a well-formed permalink raises no notice
        assert (shots / f"{name}.png").stat().st_size > DRAWN_BYTES, name
