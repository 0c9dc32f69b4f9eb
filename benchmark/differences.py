"""Comparing an entry's stored numbers with the ones CI recomputed: every leaf, floats to 1e-9 relative."""

from __future__ import annotations

import math
from typing import Any


def differences(expected: Any, actual: Any, field: str,
                source: str = "the stored predictions") -> list[tuple[str, str]]:
    """Every leaf where the stored value (`actual`) is not the one recomputed from `source` (`expected`); keys the
    stored value has beyond the recomputed one are the caller's to refuse."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for key in expected for d in differences(expected[key], actual.get(key), f"{field}.{key}", source)]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in differences(e, a, f"{field}[{i}]", source)]
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        if math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12):
            return []
    elif expected == actual:
        return []
    return [(field, f"is {actual!r}; recomputed from {source}: {expected!r}")]
