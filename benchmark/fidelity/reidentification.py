"""Interim: helper B's `ReidentificationResult` as its brief describes it, so that `assessment.ArmQuality` loads
before branch i19-reid is merged; that branch's reidentification.py replaces this file whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .metrics import Estimate


class ReidentificationResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_synthetic: int
    mean_probability: float
    threshold: float
    share_above: Estimate
    expected_share: float
    p_value: float
    verifier_auc: Estimate
    verifier_seed: int
    n_pairs: int
