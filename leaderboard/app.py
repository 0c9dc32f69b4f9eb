"""The Streamlit leaderboard: `cxrbench leaderboard serve`, or `streamlit run leaderboard/app.py -- --submissions DIR`.

It shows what is in `submissions/` (read through cxrbench's schemas, never model code). Text from
submissions goes through widgets that render plain text (tables, st.text, captions), never HTML.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from cxrbench.errors import SubmissionError
from cxrbench.leaderboard.table import Entry, build_table, load_entries
from cxrbench.leaderboard.views import generator, protocol, ranking

PAGES = {"Ranking": ranking.render, "Generator": generator.render, "Protocol and statistics": protocol.render}


def submissions_root() -> Path:
    """`--submissions DIR` after `--`, else $CXRBENCH_SUBMISSIONS, else ./submissions."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--submissions", type=Path)
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.submissions or Path(os.environ.get("CXRBENCH_SUBMISSIONS", "submissions"))


@st.cache_data(show_spinner=False)
def _load(root: str, stamp: float) -> tuple[list[Entry], object]:
    """Entries and table, cached until a file under the folder changes (`stamp`)."""
    path = Path(root)
    return load_entries(path), build_table(path)


def _stamp(root: Path) -> float:
    return max((p.stat().st_mtime for p in root.rglob("*") if p.is_file()), default=0.0)


def main() -> None:
    st.set_page_config(page_title="cxrbench leaderboard", layout="wide")
    root = submissions_root()
    if not root.is_dir():
        st.error(f"No submissions folder at {root}")
        return
    try:
        entries, table = _load(str(root.resolve()), _stamp(root))
    except SubmissionError as error:
        st.error("Some submissions could not be read; run `cxrbench validate` on them.")
        st.text(str(error))
        return
    page = st.sidebar.radio("Page", list(PAGES), key="page")
    PAGES[page](entries, table)


main()
