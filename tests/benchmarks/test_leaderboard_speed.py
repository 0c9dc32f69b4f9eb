"""Leaderboard speed: building the table from 100 submissions, and the app's first render.

Run with `python -m pytest tests/benchmarks/test_leaderboard_speed.py --benchmark-enable`. Each measurement
sits next to a plain alternative in the same group, so the ratio is what to read:
- build: `build_table` (schema-validated through pydantic) vs `json.loads` of the same files and a
  DataFrame of their comparisons (no validation);
- first render: the app's first script run in Streamlit's AppTest (load, table, charts) vs a one-line
  Streamlit script showing the already-built table.
In the normal suite each body runs once as a smoke test; nothing is timed-asserted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cxrbench.leaderboard.table import build_table, read_board
from cxrbench.submission import task_files

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "submissions" / "oracle"
N_SUBMISSIONS = 100

pytestmark = pytest.mark.skipif(not ENTRY.exists(), reason="the committed oracle submission is missing")


@pytest.fixture(scope="module")
def hundred(tmp_path_factory) -> Path:
    """100 submission folders: copies of the oracle entry (2 task files each) under other names."""
    root = tmp_path_factory.mktemp("submissions")
    for i in range(N_SUBMISSIONS):
        name = f"gen-{i:03d}"
        shutil.copytree(ENTRY, root / name)
        card = root / name / "generator.yaml"
        card.write_text(card.read_text().replace("name: oracle", f"name: {name}"))
        for path in task_files(root / name):
            data = json.loads(path.read_text())
            data["generator"] = data["generators"][0]["name"] = name
            path.write_text(json.dumps(data))
    return root


def _plain_read(root: Path) -> pd.DataFrame:
    rows = []
    for folder in sorted(root.iterdir()):
        for path in task_files(folder):
            data = json.loads(path.read_text())
            rows += [{**c, "generator": data["generator"]} for c in data["result"]["comparisons"]]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("how", ["build_table", "plain json"])
def test_build_100_submissions(benchmark, hundred, how):
    benchmark.group = f"leaderboard build, {N_SUBMISSIONS} submissions"
    build = (lambda root: build_table(read_board(root).entries)) if how == "build_table" else _plain_read
    table = benchmark.pedantic(build, args=(hundred,), rounds=3, iterations=1)
    assert table["generator"].nunique() == N_SUBMISSIONS


MINIMAL_APP = """
import pandas as pd, streamlit as st
st.dataframe(pd.read_parquet({path!r}))
"""


@pytest.mark.parametrize("how", ["leaderboard app", "one-table app"])
def test_first_render(benchmark, monkeypatch, tmp_path, how):
    """The first run of the script on a fresh AppTest (Streamlit's caches cleared each round)."""
    import streamlit as st

    monkeypatch.setenv("CXRBENCH_SUBMISSIONS", str(REPO / "submissions"))
    if how == "leaderboard app":
        script = str(REPO / "leaderboard" / "app.py")
    else:
        build_table(read_board(REPO / "submissions").entries).to_parquet(tmp_path / "table.parquet")
        (tmp_path / "app.py").write_text(MINIMAL_APP.format(path=str(tmp_path / "table.parquet")))
        script = str(tmp_path / "app.py")

    def first_render():
        st.cache_data.clear()
        return AppTest.from_file(script, default_timeout=60).run()

    benchmark.group = "app first render (AppTest)"
    at = benchmark.pedantic(first_render, rounds=3, iterations=1)
    assert not at.exception and at.dataframe
