"""Versioned pydantic schemas: what a task and a generator declare, what a run asks, what it writes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .protocol import RESULT_SCHEMA_VERSION

Conditioning = Literal["label", "text", "mask"]


class TaskMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str = Field(description="Bumped whenever data, split rule, recipe or metric change.")
    suite: str = Field(description="The suite it belongs to; the registry's tasks define the known suites.")
    kind: Literal["classification", "segmentation"]
    labels: list[str]
    metric: Literal["macro_f1", "dice"]
    resolution: int
    description: str
    data_source: str = Field(description="Where the data comes from and how to get it.")
    split_rule: str = Field(description="The versioned patient-level split rule.")
    default_train_size: int | None = Field(description="Real training images used by default (None: all).")
    default_ratios: list[float] = Field(description="Synthetic images per real training image.")
    default_seeds: int = Field(ge=2)


class DatasetRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    dataset: str
    split: str


class GeneratorMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    role: Literal["baseline", "control", "generator"]
    description: str
    conditioning: list[Conditioning]
    trained_on: list[DatasetRef] = Field(
        default_factory=list, description="Data the generator saw before the run (checked against test splits)."
    )
    licence: str = "Apache-2.0"
    suites: list[str] | None = Field(default=None, description="Suites it can serve (None: all).")
    verified: bool = Field(default=True, description="False for third-party generators from entry points.")
    variant_of: str | None = Field(default=None, description="The generator this one refines (e.g. by a proxy "
                                   "filter); a run holding both compares them directly.")


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    tasks: list[str] = Field(min_length=1)
    generators: list[str] = Field(min_length=1)
    ratios: list[float] | None = Field(default=None, description="None: each task's default ratios.")
    seeds: int | None = Field(default=None, ge=2, description="None: each task's default; >= 2 for a t-test.")
    train_size: int | None = Field(default=None, gt=0, description="None: each task's default.")
    n_boot: int = Field(default=2000, ge=100)
    data_root: Path | None = None
    device: str = "cpu"
    generator_config: dict[str, dict] = Field(
        default_factory=dict, description="Options per generator name (e.g. a preset, a local weights path).")

    @field_validator("ratios")
    @classmethod
    def _positive_ratios(cls, ratios: list[float] | None) -> list[float] | None:
        if ratios is None:
            return None
        bad = [r for r in ratios if not r > 0]
        if bad or not ratios:
            raise ValueError(f"ratios must be positive numbers (synthetic per real image), got {ratios}")
        return sorted(set(ratios))


class SeedScore(BaseModel):
    seed: int
    score: float
    per_label: dict[str, float] = Field(default_factory=dict)
    secondary: dict[str, float] = Field(default_factory=dict)
    cell: str = Field(description="Cache key of the downstream cell holding the per-case predictions.")


class ArmResult(BaseModel):
    generator: str
    generator_revision: str
    ratio: float = Field(description="0 for the real-only baseline.")
    n_real: int
    n_synthetic: int
    seeds: list[SeedScore]
    mean: float
    std: float


class ComparisonResult(BaseModel):
    generator: str
    ratio: float
    reference: str = Field(description="The arm compared against (real_only, or a reference the protocol names: "
                                       "a baseline such as classic_aug, or the generator this one is a variant of).")
    reference_mean: float
    arm_mean: float
    delta: float
    t_ci: tuple[float, float]
    boot_ci: tuple[float, float]
    p_value: float = Field(description="One-sided paired t-test over seeds, H1: the arm scores higher.")
    p_holm: float
    p_bonferroni: float
    n_seeds: int


class TaskResult(BaseModel):
    task: TaskMeta
    n_train_real: int
    n_val: int
    n_test: int
    n_test_patients: int
    baseline: ArmResult
    arms: list[ArmResult]
    comparisons: list[ComparisonResult]


class RunResult(BaseModel):
    schema_version: Literal["1"] = RESULT_SCHEMA_VERSION
    protocol_version: str
    cxrbench_version: str
    created: datetime
    config: RunConfig
    generators: list[GeneratorMeta]
    tasks: list[TaskResult]
    methods: dict[str, str] = Field(description="How every reported number was computed.")
    environment: dict[str, str]
    wall_seconds: float
