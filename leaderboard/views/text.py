"""Text for the pages: submission text escaped for Markdown widgets, numbers and intervals as the tables print them."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~$:])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(text: object) -> str:
    """`text` with every Markdown and HTML character escaped, so a Markdown widget shows it as typed."""
    return _SPECIAL.sub(r"\\\1", str(text))


def quoted(text: object, limit: int = 60) -> str:
    """`text` for a plain-text notice: its repr (control characters escaped), cut to `limit` characters."""
    return repr(str(text)[:limit]) + ("…" if len(str(text)) > limit else "")


def interval(low: float, high: float) -> str:
    return f"[{low:+.3f}, {high:+.3f}]"


def not_a_formula(text: str) -> str:
    """Submission text bound for a CSV download: a leading quote where a spreadsheet would read a formula."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text
