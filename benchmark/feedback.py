"""Reviewer feedback on a synthetic set: one JSON line per verdict, appended atomically, read back with checks.

A line names the image by the sha256 of its PNG (as in the set's manifest) and the generator
revision that made it, so a verdict can never be applied to another model's images. Reading skips
and counts every line it cannot trust (unreadable or truncated, unknown image hash, other
generator revision) instead of using it or failing the whole file; the latest verdict per image wins.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Verdict = Literal["accept", "reject"]


class FeedbackRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewer: str = Field(min_length=1)
    time: datetime
    image_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    generator: str
    generator_revision: str
    task: str
    verdict: Verdict
    comment: str = ""


def now() -> datetime:
    return datetime.now(timezone.utc)


def append_feedback(path: Path, record: FeedbackRecord) -> None:
    """One `write` of a whole line on an O_APPEND descriptor (concurrent reviewers never interleave a line), every
    byte checked (a short write on a full disk is an error, never a silent loss), and a newline first when the
    file's last line was cut short, so the new verdict is never glued onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (record.model_dump_json() + "\n").encode()
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(descriptor, line)
        if written != len(line):
            raise OSError(f"{path}: only {written} of {len(line)} bytes of the verdict were written (disk full?)")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class FeedbackFile:
    verdicts: dict[str, FeedbackRecord]
    """Image hash -> the latest trusted verdict on it."""
    skipped: Counter = field(default_factory=Counter)
    """Why lines were skipped -> how many."""
    problems: list[str] = field(default_factory=list)
    """One message per skipped line, naming the file and line number."""

    def summary(self) -> str:
        if not self.skipped:
            return f"{len(self.verdicts)} verdicts, no line skipped"
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"{len(self.verdicts)} verdicts; skipped {sum(self.skipped.values())} lines ({reasons})"


def read_feedback(path: Path, *, revision: str, known_hashes: set[str] | None = None) -> FeedbackFile:
    """Trusted verdicts on images of generator `revision` (and, if given, among `known_hashes`)."""
    result = FeedbackFile(verdicts={})
    if not path.is_file():
        return result
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = FeedbackRecord.model_validate_json(line)
        except ValidationError as error:
            problem = error.errors()[0]
            _skip(result, "unreadable", f"{path}:{number}: not a feedback record "
                  f"({'.'.join(map(str, problem['loc'])) or 'line'}: {problem['msg']})")
            continue
        if record.generator_revision != revision:
            _skip(result, "other generator revision", f"{path}:{number}: made by generator revision "
                  f"{record.generator_revision}, expected {revision}")
        elif known_hashes is not None and record.image_sha256 not in known_hashes:
            _skip(result, "unknown image hash", f"{path}:{number}: image {record.image_sha256[:12]} is not in the set")
        else:
            result.verdicts[record.image_sha256] = record
    return result


def _skip(result: FeedbackFile, reason: str, message: str) -> None:
    result.skipped[reason] += 1
    result.problems.append(message)
