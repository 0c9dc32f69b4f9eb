"""Interim: helper A's `ExtractorIdentity`, exactly as its brief specifies, so that `assessment.ArmQuality` loads
before branch i19-feat is merged; that branch's extractor.py replaces this file whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ExtractorIdentity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    weights_sha256: str
    dim: int
    input_size: int
