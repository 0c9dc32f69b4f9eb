"""Interim: helper A's `ExtractorIdentity` as branch i19-feat defines it, so that `assessment.ArmQuality` loads before
that branch is merged; its extractor_base.py replaces this file whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExtractorIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    dim: int = Field(ge=1)
    input_size: tuple[int, int]
