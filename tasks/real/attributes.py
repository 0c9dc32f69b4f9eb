"""Patient sex and age as datasets record them, read strictly: an unknown spelling is refused, not guessed."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TypeVar

from cxrbench.errors import DataError

from .tables import Table

log = logging.getLogger(__name__)

Attributes = tuple[str | None, float | None]
"""(sex F or M, age in years) of one image's patient; None where the dataset leaves it blank or unknown."""

_SEXES = {"f": "F", "female": "F", "m": "M", "male": "M"}
_UNKNOWN = {"", "unknown", "u", "o", "nan"}
_OLDEST = 125
_DICOM_AGE_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
"""DICOM's age string `nnnY/M/W/D` (years, months, weeks, days), as a factor to years."""

Value = TypeVar("Value")


def parse_sex(value: object, where: str) -> str | None:
    """F or M from the spellings datasets use (M/F, Male/Female); blank or Unknown: None."""
    text = str(value).strip().lower()
    if text in _UNKNOWN:
        return None
    if text not in _SEXES:
        raise DataError(f"{where}: sex {value!r} is not one of M, F, Male, Female, Unknown or blank")
    return _SEXES[text]


def parse_age(value: object, where: str) -> float | None:
    """Age in years (a number, or DICOM's `058Y`, `011M`, `003W`, `005D`); blank: None.

    An age above 125 years is a recording error in published data (RSNA's headers hold five, 148-155), not a
    malformed field: refusing it would make the dataset unusable, so it counts as unknown, with a warning."""
    text = str(value).strip()
    if text.lower() in _UNKNOWN:
        return None
    unit = _DICOM_AGE_UNITS.get(text[-1:].upper())
    try:
        age = float(text[:-1] if unit else text) * (unit or 1.0)
    except ValueError:
        raise DataError(f"{where}: age {value!r} is not a number of years") from None
    if not math.isfinite(age) or age < 0:
        raise DataError(f"{where}: age {value!r} is not a number of years from 0")
    if age > _OLDEST:
        log.warning("%s: age %r is above %d years, a recording error; counted as unknown", where, value, _OLDEST)
        return None
    return age


def table_attributes(table: Table, ids: list[str], sex_column: str, age_column: str) -> dict[str, Attributes]:
    """(sex, age) per id (one per table row) from two of the table's columns."""
    return dict(zip(ids, zip(_parsed(table, sex_column, parse_sex), _parsed(table, age_column, parse_age),
                             strict=True), strict=True))


def _parsed(table: Table, column: str, parse: Callable[[str, str], Value]) -> list[Value]:
    """Each row's value of `column` through `parse`, each distinct spelling parsed once (CheXpert's train.csv has
    223k rows and about a hundred spellings), an error naming the first row that holds it."""
    values = table.rows[column].tolist()
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        first.setdefault(value, index)
    parsed = {value: parse(value, f"{table.where(index)}: column {column!r}") for value, index in first.items()}
    return [parsed[value] for value in values]
