"""Submission text inside Markdown widgets: every Markdown and HTML character escaped, so it shows as typed."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~$:])")


def plain(text: object) -> str:
    return _SPECIAL.sub(r"\\\1", str(text))
