"""Patient sex and age as datasets record them, read strictly: an unknown spelling is refused, not guessed."""

from __future__ import annotations

import math

from cxrbench.errors import DataError

Attributes = tuple[str | None, float | None]
"""(sex F or M, age in years) of one image's patient; None where the dataset leaves it blank or unknown."""

_SEXES = {"f": "F", "female": "F", "m": "M", "male": "M"}
_UNKNOWN = {"", "unknown", "u", "o", "nan"}
_OLDEST = 125


def parse_sex(value: object, where: str) -> str | None:
    """F or M from the spellings datasets use (M/F, Male/Female); blank or Unknown: None."""
    text = str(value).strip().lower()
    if text in _UNKNOWN:
        return None
    if text not in _SEXES:
        raise DataError(f"{where}: sex {value!r} is not one of M, F, Male, Female, Unknown or blank")
    return _SEXES[text]


def parse_age(value: object, where: str) -> float | None:
    """Age in years (a number, as DICOM's `058Y` too); blank: None."""
    text = str(value).strip()
    if text.lower() in _UNKNOWN:
        return None
    number = text[:-1] if text.upper().endswith("Y") else text
    try:
        age = float(number)
    except ValueError:
        raise DataError(f"{where}: age {value!r} is not a number of years") from None
    if not math.isfinite(age) or not 0 <= age <= _OLDEST:
        raise DataError(f"{where}: age {value!r} is outside 0-{_OLDEST} years")
    return age
