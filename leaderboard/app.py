"""The Streamlit leaderboard: `cxrbench leaderboard serve`, or `streamlit run leaderboard/app.py -- --submissions DIR`.

It shows what is in `submissions/` (read through cxrbench's schemas, never model code). Text from
submissions goes through widgets that render plain text (tables, st.text, captions), never HTML. The
page, its filters and its chosen generators are in the URL (`views.permalink`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from cxrbench.errors import SubmissionError
from cxrbench.leaderboard.table import Board, build_table, read_board
from cxrbench.leaderboard.views import comparison, generator, overview, permalink, protocol, ranking

# query value -> (title, page); the first is the landing page (a string here would be drawn: Streamlit's magic)
PAGES = {"overview": ("Overview", overview.render), "ranking": ("Ranking", ranking.render),
         "comparison": ("Comparison", comparison.render), "generator": ("Generator", generator.render),
         "protocol": ("Protocol and statistics", protocol.render)}


def submissions_root() -> Path:
    """`--submissions DIR` after `--`, else $CXRBENCH_SUBMISSIONS, else ./submissions."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--submissions", type=Path)
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.submissions or Path(os.environ.get("CXRBENCH_SUBMISSIONS", "submissions"))


@st.cache_data(show_spinner=False)
def _load(root: str, stamp: float) -> tuple[Board, object]:
    """The readable entries, the refused ones and the table, cached until a file under the folder changes."""
    board = read_board(Path(root))
    return board, build_table(board.entries)


def _stamp(root: Path) -> float:
    """The newest modification time under `root`, links not followed (a link's target is never read)."""
    return max((p.lstat().st_mtime for p in root.rglob("*")), default=0.0)


def main() -> None:
    st.set_page_config(page_title="cxrbench leaderboard", layout="wide")
    notices = st.container()  # the link's problems, found while the page is drawn, shown above it
    root = submissions_root()
    if not root.is_dir():
        st.error(f"No submissions folder at {root}")
        return
    try:
        board, table = _load(str(root.resolve()), _stamp(root))
    except SubmissionError as error:
        st.error("The submissions folder could not be read.")
        st.text(str(error))
        return
    for name, problems in board.refused.items():
        st.warning(f"An entry has {len(problems)} problem(s) and is left off the board until `cxrbench validate` "
                   "passes:")
        st.text(f"{name}: " + "; ".join(f"{file} {field}: {what}".replace("  ", " ") for file, field, what in problems))
    permalink.begin()
    page = permalink.choice(st.sidebar.radio, "Page", list(PAGES), key="page", format_func=lambda p: PAGES[p][0])
    PAGES[page][1](board.entries, table)
    permalink.finish(notices)


main()
