"""Reading a dataset's metadata table with errors that name the file, the line and the column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxrbench.errors import DataError


def read_table(path: Path, required: list[str], *, what: str) -> pd.DataFrame:
    """The CSV at `path` as strings (blank = ''), after checking it exists and has every `required` column.

    Column names are stripped: SIIM's header is `ImageId, EncodedPixels`, with a leading space."""
    if not path.is_file():
        raise DataError(f"missing {what}: expected {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise DataError(f"{path}: cannot parse as CSV: {error}") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    return table


def line(path: Path, index: int) -> str:
    """Where data row `index` (0-based) sits in its CSV: line 1 is the header."""
    return f"{path} line {index + 2}"
