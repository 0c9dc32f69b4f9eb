"""Reading a dataset's metadata table strictly, with errors that name the file, the physical line and the column.

pandas would read a row with an extra field as an index (shifting every column of the table) and fill a short
row with blanks; a quoted report spanning several lines would shift every later line number. The csv module
reads each record with the line it starts on, and a row whose field count differs from the header's is refused.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxrbench.errors import DataError

from .confined import MAX_FILE_BYTES, open_regular, read_at_most


@dataclass(frozen=True)
class Table:
    path: Path
    rows: pd.DataFrame
    """Every field as a string (blank = ''), columns named as in the header (stripped)."""
    lines: list[int]
    """The physical line each row starts on (the header is line 1)."""

    def where(self, index: int) -> str:
        """Where data row `index` (0-based) sits, for error messages."""
        return f"{self.path} line {self.lines[index]}"


def read_table(path: Path, required: list[str], *, what: str) -> Table:
    """The CSV at `path` (gzip if it ends in .gz), after checking it has every `required` column.

    Column names are stripped: SIIM's header is `ImageId, EncodedPixels`, with a leading space."""
    if not os.path.lexists(path):
        raise DataError(f"missing {what}: expected {path}")
    header, rows, lines = _records(path, _text(path))
    duplicate = next((name for number, name in enumerate(header) if name in header[:number]), None)
    if duplicate is not None:
        raise DataError(f"{path} line 1: column {duplicate!r} appears twice in the header")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {header}")
    return Table(path, pd.DataFrame(rows, columns=header, dtype=object), lines)


def _text(path: Path) -> str:
    with open_regular(path, str(path), "table") as handle:
        stream = gzip.GzipFile(fileobj=handle) if path.suffix == ".gz" else handle
        try:
            data = read_at_most(stream, MAX_FILE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: cannot read the table: {error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"{path}: table is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(f"{path} line {line}: not UTF-8 text (byte {error.start})") from None


def _records(path: Path, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, the line each row starts on); blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DataError(f"{path}: the table is empty (no header line)")
        rows, lines, start = [], [], reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                raise DataError(f"{path} line {start}: {len(row)} fields, expected {len(header)} "
                                "(the header's columns)")
            if row:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path} line {reader.line_num}: cannot parse as CSV: {error}") from None
    return header, rows, lines
