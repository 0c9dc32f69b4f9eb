"""The submission format: what a pull request adds under `submissions/<generator>/`.

A folder holds `generator.yaml` (a `GeneratorCard`: who made the generator, from what code and
data) and one `<suite>__<task>.json` per task (a `TaskSubmission`): the task's scored result plus
every arm's per-case predictions for every seed, so that anyone can recompute every number from
the file and the task's own test labels. Both are schema-versioned; a file written by an older
cxrbench is upgraded on load (`UPGRADES`), one written by a newer one is refused.

This module is light on purpose (pydantic, numpy): the leaderboard imports it and no model code.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import SubmissionError
from .protocol import SUBMISSION_SCHEMA_VERSION
from .schemas import Conditioning, DatasetRef, GeneratorMeta, RunConfig, TaskResult
from .untrusted import MAX_CARD_BYTES, load_json, load_npz, load_yaml, read_bounded

CARD_FILE = "generator.yaml"
GALLERY_DIR = "gallery"
MAX_FILE_BYTES = 1_000_000
MAX_PREDICTION_BYTES = 64_000_000
"""Unpacked size of a task file's predictions (the largest committed entry's: 3 MB): a small file must not
expand to gigabytes."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!]|javascript:", re.IGNORECASE)



def _from_v1(data: dict) -> dict:
    """v1 declared `fidelity` and `privacy` maps that cxrbench never filled: drop them empty, refuse them filled."""
    filled = [name for name in ("fidelity", "privacy") if data.get(name)]
    if filled:
        raise ValueError(f"carries {' and '.join(filled)} values, which no cxrbench computes (nothing could "
                         f"recompute them); remove them")
    return {**{k: v for k, v in data.items() if k not in ("fidelity", "privacy")}, "schema_version": "2"}


def _from_v2(data: dict) -> dict:
    """v3 task files hold protocol 2 results (regimes, the primary analysis, the fixed family): a v2 task file's
    numbers cannot be turned into them and must be recomputed; a v2 card is a v3 card."""
    if "result" in data:
        raise ValueError("holds a protocol 1 result (submission schema 2), which protocol 2 cannot reuse: rerun the "
                         "generator with this cxrbench (`cxrbench run`) and submit again")
    return {**data, "schema_version": "3"}


UPGRADES: dict[str, Callable[[dict], dict]] = {"1": _from_v1, "2": _from_v2}
"""Version -> function turning a file of that version into the next version's dict."""


def _no_markup(value: str) -> str:
    if _MARKUP.search(value):
        raise ValueError("must be plain text; HTML tags and script URLs are not allowed")
    return value


class GeneratorCard(BaseModel):
    """`generator.yaml`: the generator's public description, shown on its leaderboard page."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SUBMISSION_SCHEMA_VERSION
    name: str = Field(pattern=NAME_PATTERN, description="Lower-case letters, digits, '_', '.', '-'; the folder name.")
    revision: str = Field(min_length=1, max_length=200, description="Version or commit of the generator's code.")
    authors: list[str] = Field(min_length=1)
    code: str = Field(min_length=1, description="Where the code lives (URL or module path).")
    licence: str = Field(min_length=1)
    conditioning: list[Conditioning] = Field(min_length=1)
    training_data: list[DatasetRef] = Field(
        description="Everything the generator learnt from; a task's test split here is a leak.")
    hardware: str = Field(min_length=1, description="What the submission was computed on.")
    description: str = ""

    @field_validator("revision", "code", "licence", "hardware", "description")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _no_markup(value)

    @field_validator("authors")
    @classmethod
    def _plain_authors(cls, value: list[str]) -> list[str]:
        return [_no_markup(v) for v in value]


class GalleryImage(BaseModel):
    condition: str = Field(description="What the images were asked for, in words.")
    file: str = Field(pattern=r"^gallery/[a-z0-9_.-]+\.png$")

    @field_validator("condition")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _no_markup(value)


class TaskSubmission(BaseModel):
    """One (suite, task) result of one generator, with the predictions that every number comes from."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SUBMISSION_SCHEMA_VERSION
    generator: str = Field(pattern=NAME_PATTERN)
    verified: bool = Field(description="True for generators whose code is in this repository's registry.")
    created: datetime = Field(description="When the entry was made (ISO 8601 with a time zone); not in the future.")
    cxrbench_version: str
    protocol_version: str
    config: RunConfig = Field(description="The run's settings (train size, seeds, ratios, bootstrap).")
    generators: list[GeneratorMeta] = Field(description="The generator's and its reference baselines' metadata.")
    split_hash: str = Field(description="Hash of the task's train/val/test sample ids (samples.split_hash).")
    val_ids: list[str]
    test_ids: list[str]
    result: TaskResult
    predictions: str = Field(description="base64 of an npz: '<generator>|<ratio>|<seed>|<array>' -> array.")
    gallery: list[GalleryImage] = Field(default_factory=list)
    closest_pairs: str | None = Field(
        default=None, pattern=r"^gallery/[a-z0-9_.-]+__closest_pairs\.png$",
        description="The generator's closest-pairs figure (`closest_pairs`), on tasks whose images may be published.")

    @field_validator("created", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        if not isinstance(value, (str, datetime)):
            raise ValueError("must be an ISO 8601 date and time (e.g. 2026-12-01T20:34:00Z), not a number")
        return value

    @field_validator("created")
    @classmethod
    def _not_in_the_future(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. a trailing Z for UTC)")
        if value > datetime.now(timezone.utc) + timedelta(days=1):
            raise ValueError(f"is {value.isoformat()}, in the future")
        return value

    @property
    def suite(self) -> str:
        return self.result.task.suite

    @property
    def task(self) -> str:
        return self.result.task.name


def task_file_name(suite: str, task: str, regime: str) -> str:
    return f"{suite}__{task}__{regime}.json"


def prediction_key(generator: str, ratio: float, seed: int, array: str) -> str:
    return f"{generator}|{ratio:g}|{seed}|{array}"


def encode_predictions(arrays: dict[str, np.ndarray]) -> str:
    """Compressed npz as base64; boolean masks are bit-packed first (8x smaller before deflate)."""
    packed: dict[str, np.ndarray] = {}
    for key, array in arrays.items():
        if array.dtype == bool:
            packed[f"{key}#bits"] = np.packbits(array.ravel())
            packed[f"{key}#shape"] = np.asarray(array.shape, dtype=np.int64)
        else:
            packed[key] = array
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **packed)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_predictions(text: str) -> dict[str, np.ndarray]:
    """Inverse of `encode_predictions`; raises ValueError on anything that is not such a blob (the archive is read
    by `untrusted.load_npz`; crafted packed arrays fail numpy in as many ways, each reported as the one ValueError)."""
    try:
        return _unpacked(load_npz(base64.b64decode(text, validate=True), MAX_PREDICTION_BYTES))
    except ValueError as error:  # load_npz's, binascii.Error
        raise ValueError(f"not a base64 npz archive ({error})") from None
    except Exception as error:  # numpy on crafted packed arrays: see the docstring
        raise ValueError(f"not a base64 npz archive ({type(error).__name__}: {error})") from None


def _unpacked(stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays = {key: value for key, value in stored.items() if "#" not in key}
    for key in stored:
        if key.endswith("#bits"):
            name = key[: -len("#bits")]
            shape, bits = tuple(int(n) for n in stored[f"{name}#shape"]), 8 * stored[key].size
            if min(shape, default=0) < 0 or math.prod(shape) > bits:  # unpackbits would pad with made-up zeros
                raise ValueError(f"{name} claims shape {shape}, more values than its {bits} bits")
            arrays[name] = np.unpackbits(stored[key], count=math.prod(shape)).astype(bool).reshape(shape)
    return arrays


def upgraded(data: dict) -> dict:
    """The file's dict at the current schema version, applying `UPGRADES` in turn."""
    version = str(data.get("schema_version", ""))
    while version != SUBMISSION_SCHEMA_VERSION:
        if version not in UPGRADES:
            raise ValueError(unreadable_version(data.get("schema_version")))
        data = UPGRADES[version](data)
        version = str(data.get("schema_version", ""))
    return data


def unreadable_version(version: object) -> str:
    """What to do about a schema version no upgrade starts from: write the current one, unless the file is newer
    than this cxrbench (then, and only then, upgrading cxrbench is the fix)."""
    current = SUBMISSION_SCHEMA_VERSION
    if version is None:
        return f"schema_version: missing; add schema_version: '{current}'"
    if str(version).isdigit() and int(version) > int(current):
        return (f"schema_version: '{version}' is newer than this cxrbench reads (it reads up to '{current}'); "
                f"upgrade cxrbench")
    known = ", ".join(f"'{v}'" for v in [*UPGRADES, current])
    return f"schema_version: {version!r} is not a schema version (known: {known}); write schema_version: '{current}'"


def load_task_submission(path: Path) -> TaskSubmission:
    """Read (a regular file under MAX_FILE_BYTES), upgrade and validate a task file (raises OSError, ValueError or
    pydantic's ValidationError)."""
    data = load_json(read_bounded(path, MAX_FILE_BYTES))
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object of a task file's fields")
    return TaskSubmission.model_validate(upgraded(data))


def task_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*__*.json"))


def load_card(path: Path) -> GeneratorCard:
    """Read `generator.yaml`; every problem is raised as one SubmissionError naming the file and field."""
    try:
        data = load_yaml(read_bounded(path, MAX_CARD_BYTES))
    except OSError as error:
        raise SubmissionError([(str(path), "", f"cannot read: {error.strerror or error}")]) from None
    except UnicodeDecodeError:
        raise SubmissionError([(str(path), "", "is not UTF-8 text")]) from None
    except ValueError as error:
        raise SubmissionError([(str(path), "", str(error))]) from None
    except yaml.YAMLError as error:
        raise SubmissionError([(str(path), "", f"malformed YAML: {' '.join(str(error).split())}")]) from None
    if not isinstance(data, dict):
        raise SubmissionError([(str(path), "", "expected a YAML mapping of the generator card's fields")])
    try:
        return GeneratorCard.model_validate(upgraded(data))
    except ValueError as error:
        raise SubmissionError(pydantic_problems(str(path), error)) from None


def pydantic_problems(file: str, error: ValueError) -> list[tuple[str, str, str]]:
    if isinstance(error, ValidationError):
        return [(file, ".".join(map(str, e["loc"])), e["msg"]) for e in error.errors()]
    return [(file, "", str(error))]
