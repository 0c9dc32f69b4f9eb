"""Generator options: the base of every generator's options model, and the one line that refuses a bad option.

Options come from a YAML file (`--generator-config`) that nobody checked, so a misspelt key, a value
out of range, inf or NaN, or a YAML date must stop the run before any work, naming the generator and
the option's path (`ldm_text.denoiser.stpes`), instead of being dropped or reaching the training loop.
"""

from __future__ import annotations

import reprlib
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class GeneratorOptions(BaseModel):
    """No unknown key, no inf or NaN, no change after validation. A generator without options uses it as is."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def refused_option(generator: str, options: type[BaseModel], error: ValidationError) -> str:
    """One line for the first problem pydantic found (and how many more there are)."""
    first = error.errors(include_url=False)[0]
    loc = first["loc"]
    path = ".".join([generator, *map(_key, loc)])
    if first["type"] == "extra_forbidden":
        parent = _model_at(options, loc[:-1])
        known = sorted(parent.model_fields) if parent else []
        owner = ".".join([generator, *map(_key, loc[:-1])])
        message = (f"generator option {path} is unknown; {owner} takes {', '.join(known)}" if known else
                   f"generator option {path} is unknown; {owner} takes no options")
    elif first["type"] == "missing":
        field = _model_at(options, loc[:-1])
        about = field.model_fields[loc[-1]].description if field and loc[-1] in field.model_fields else None
        message = f"generator option {path} is missing" + (f": {about}" if about else "")
    elif first["type"] == "model_type":
        message = f"generator option {path}: expected a mapping of options, got {_short(first['input'])}"
    else:
        what = first["msg"].removeprefix("Value error, ")
        message = f"generator option {path}: {what}, got {_short(first['input'])}"
    more = error.error_count() - 1
    return message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _key(part: str | int) -> str:
    """A path part as typed, or quoted when it would not read as one (a key with a space, a dot, a newline)."""
    return part if isinstance(part, str) and part.isidentifier() else repr(part)


def _short(value: Any) -> str:
    """A bounded repr: a value from YAML may be huge, or (through aliases) exponentially large when written out."""
    text = reprlib.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The options model that holds the option at `loc` (nested models by field name), or None."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        nested = [t for t in _types_in(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)] \
            if field else []
        if not nested:
            return None
        model = nested[0]
    return model


def _types_in(annotation: Any) -> list[Any]:
    """`annotation` and the types inside it (`X | None`, `Annotated[X, ...]`)."""
    return [annotation, *(t for arg in typing.get_args(annotation) for t in _types_in(arg))]
