"""Versioned pydantic schemas: what a task and a generator declare, what a run asks, what it writes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .conditions import ConditionPolicy
from .fidelity.assessment import ArmQuality
from .protocol import RESULT_SCHEMA_VERSION

Conditioning = Literal["label", "text", "mask"]
Profile = Literal["protocol", "smoke"]
"""What a run computes: the protocol (every regime, the tasks' seeds and ratios) or the smoke profile (each task's
`smoke` settings: a quick regression check, never a submission)."""


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
    regimes: dict[str, int | None] = Field(
        min_length=1, description="Named training sizes in real images, smallest first (None: the whole training "
                                  "split); a run covers every regime unless told otherwise.")
    default_ratios: list[float] = Field(description="Synthetic images per real training image.")
    default_seeds: int = Field(ge=2)


class SmokeSettings(BaseModel):
    """What a task runs under the smoke profile (`cxrbench run --profile smoke`): fixed and versioned like any task
    setting (`protocol.SMOKE_PROFILE_VERSION`). The recipe is the protocol's, so a smoke cell is the protocol's cell
    of the same regime, ratio and seed: only fewer of them are trained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    regimes: list[str] = Field(min_length=1, description="The task's regimes the smoke profile runs.")
    seeds: int = Field(ge=2, description="Seeds per arm, from the run's first seed on.")
    ratios: list[float] | None = Field(default=None, description="None: the task's default ratios.")


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
                                   "filter); the protocol compares the two directly.")
    needs_pool: bool = Field(default=False, description="Draws real training images from outside the regime's "
                             "subset (real_extra): serves only regimes that leave such a pool.")


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    tasks: list[str] = Field(min_length=1)
    generators: list[str] = Field(min_length=1)
    ratios: list[float] | None = Field(default=None, description="None: each task's default ratios.")
    seeds: int | None = Field(default=None, ge=2, le=1000,
                              description="None: each task's default; >= 2 for a t-test, at most 1,000.")
    regimes: list[str] | None = Field(default=None, description="None: every regime of each task.")
    train_size: int | None = Field(default=None, gt=0, description="A training size outside the protocol's regimes "
                                   "(its own regime, named by the size); None: the task's regimes.")
    first_seed: int = Field(default=0, ge=0, le=1_000_000, description="The arms' seeds are first_seed, "
                            "first_seed + 1, ...: 0 for the protocol; another start repeats a check on new seeds.")
    profile: Profile = Field(default="protocol", description="protocol, or smoke: each task's smoke settings "
                             "(regimes, seeds, ratios), for a quick regression check; never a submission.")
    n_boot: int = Field(default=2000, ge=100)
    data_root: Path | None = None
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="cpu, cuda, cuda:N or mps.")
    generator_config: dict[str, dict] = Field(
        default_factory=dict, description="Options per generator name (e.g. a preset, a local weights path).")
    label_conditions: Literal["multi", "single"] = Field(
        default="multi", description="The tasks' label conditions: multi (the protocol's: real label vectors) or "
                                     "single (at most one finding each); see ConditionPolicy. Single: exploratory.")
    mask_transforms: bool = Field(default=True, description="Whether mask conditions are randomly transformed "
                                  "(the protocol's) or the training masks as they are (exploratory).")
    quality: bool = Field(default=True, description="Whether the run measures each synthetic arm's fidelity, "
                          "memorisation and re-identification (TaskResult.quality). Not given: a protocol run does, "
                          "a smoke run (a utility regression check) does not.")
    feature_extractor: str = Field(default="in_domain", description="The feature space of the quality numbers: "
                                   "in_domain, xrv:<local weights file> or hf:<local model folder>.")

    @property
    def condition_policy(self) -> ConditionPolicy:
        """How the run's tasks draw their conditions."""
        return ConditionPolicy(label_conditions=self.label_conditions, mask_transforms=self.mask_transforms)

    @model_validator(mode="after")
    def _one_way_to_size(self) -> RunConfig:
        if self.regimes is not None and self.train_size is not None:
            raise ValueError("give regimes or a train size, not both")
        fixed = [name for name in ("regimes", "train_size", "seeds", "ratios") if getattr(self, name) is not None]
        if self.profile == "smoke" and fixed:
            raise ValueError(f"the smoke profile fixes each task's regimes, seeds and ratios; it takes no "
                             f"{' or '.join(fixed)}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _quality_by_profile(cls, data: Any) -> Any:
        """Quality not given: measured in a protocol run, not in a smoke run (a regression check of the Δs)."""
        if isinstance(data, dict) and data.get("quality") is None:
            return {**data, "quality": data.get("profile", "protocol") == "protocol"}
        return data

    @field_validator("data_root")
    @classmethod
    def _utf8_data_root(cls, root: Path | None) -> Path | None:
        """The result records the data root as JSON text: a path that is not UTF-8 (bytes the file system took as
        they came) could not be written once the run is done, so it is refused before."""
        try:
            str(root).encode()
        except UnicodeEncodeError:
            shown = str(root).encode(errors="surrogateescape").decode(errors="backslashreplace")
            raise PydanticCustomError("utf8_path", "the path {path} is not UTF-8 text, which the result JSON needs: "
                                      "rename the folder, or link to it from a UTF-8 path", {"path": shown}) from None
        return root

    @field_validator("ratios")
    @classmethod
    def _positive_ratios(cls, ratios: list[float] | None) -> list[float] | None:
        if ratios is None:
            return None
        bad = [r for r in ratios if not 0 < r < 1_000]
        if bad or not ratios:
            raise ValueError(f"ratios must be positive finite numbers below 1000 (synthetic per real image), "
                             f"got {ratios}")
        return sorted(set(ratios))


class SeedScore(BaseModel):
    """One seed's score. This and the other result models refuse a key they do not know rather than drop it: a
    submission could otherwise carry a number that no check reads."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    score: float
    per_label: dict[str, float] = Field(default_factory=dict)
    secondary: dict[str, float] = Field(default_factory=dict)
    cell: str = Field(description="Cache key of the downstream cell holding the per-case predictions.")


class ArmResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str
    generator_revision: str
    ratio: float = Field(description="0 for the real-only baseline.")
    n_real: int
    n_synthetic: int
    seeds: list[SeedScore]
    mean: float
    std: float


Verdict = Literal["helps", "hurts", "no detectable difference"]


class TransferEfficiency(BaseModel):
    """How much of the real pool's value an arm delivers: Δ(arm) / Δ(real_extra), both against real_only at the
    same ratio, with Fieller's interval from their joint covariance (`efficiency.transfer_ratio`)."""

    model_config = ConfigDict(extra="forbid")

    value: float | None = Field(description="The ratio; None when Δ(real_extra) is not distinguishable from 0 "
                                            "(then `note` says so).")
    ci_low: float | None = Field(description="Lower bound of the 95% Fieller interval; None with `value`.")
    ci_high: float | None = Field(description="Upper bound of the 95% Fieller interval; None with `value`.")
    reference: Literal["real_extra"] = Field(default="real_extra", description="The arm whose Δ is the denominator.")
    note: str | None = Field(default=None, description="Why there is no value, or how to read this one.")


class SubgroupDelta(BaseModel):
    """An arm's Δ against real_only among one patient group's test cases (`subgroups.analyse`)."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(description="The group's value of the attribute (e.g. F; <60).")
    n_patients: int = Field(description="Test patients in the group.")
    n_cases: int = Field(description="Test cases (images) of those patients.")
    delta: float | None = Field(default=None, description="Mean over the same seeds of (arm - real_only) on the "
                                                          "group's cases; None with `reason`.")
    ci: tuple[float, float] | None = Field(default=None, description="95% interval: seeds and the group's patients "
                                                                     "combined, as the primary analysis.")
    p: float | None = Field(default=None, description="Two-sided p of the same t statistic.")
    p_holm: float | None = Field(default=None, description="`p`, Holm-corrected over the comparison's subgroup "
                                                           "family (not the entry's primary family).")
    verdict: Verdict | None = Field(default=None, description="From `p_holm`, as the primary verdict.")
    mde: float | None = Field(default=None, description="Smallest |Δ| detected with 80% power in this group.")
    reason: str | None = Field(default=None, description="Why the group has no number (too few patients, a label "
                                                         "without a positive case); None when it has one.")


class SubgroupGap(BaseModel):
    """Δ in one group minus Δ in the other: the seeds paired, the groups' patients resampled independently."""

    model_config = ConfigDict(extra="forbid")

    groups: tuple[str, str] = Field(description="(A, B): the gap is Δ_A - Δ_B.")
    delta: float | None = Field(default=None, description="Δ_A - Δ_B; None with `reason`.")
    ci: tuple[float, float] | None = Field(default=None, description="95% interval of the gap.")
    p: float | None = Field(default=None, description="Two-sided p of gap = 0.")
    p_holm: float | None = Field(default=None, description="`p`, Holm-corrected over the comparison's subgroup "
                                                           "family.")
    reason: str | None = Field(default=None, description="Why there is no gap (a group without a number).")


class AttributeEffects(BaseModel):
    """One patient attribute's groups (e.g. sex: F, M), their gap and the finding a reader must not miss."""

    model_config = ConfigDict(extra="forbid")

    attribute: str
    groups: list[SubgroupDelta]
    gap: SubgroupGap | None = Field(description="Only for an attribute with exactly two groups.")
    unassigned_patients: int = Field(description="Test patients with no value for the attribute (e.g. a blank age "
                                                 "in the metadata): in no group, counted here.")
    finding: str | None = Field(description="'helps F, hurts M' when the arm helps a group and hurts another (after "
                                            "correction), else a gap whose interval excludes 0; None otherwise.")


class SubgroupAnalysis(BaseModel):
    """Subgroup effects of one comparison against real_only; a family of its own, apart from the primary one."""

    model_config = ConfigDict(extra="forbid")

    attributes: list[AttributeEffects]
    family_size: int = Field(description="Hypotheses in the Holm family: every group's Δ and every gap (one "
                                         "without a number counts as p = 1).")

    @property
    def findings(self) -> list[str]:
        return [a.finding for a in self.attributes if a.finding]


class ComparisonResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str
    ratio: float
    reference: str = Field(description="The arm compared against: real_only, or a reference the protocol names "
                                       "(classic_aug; the generator this one is a variant of).")
    reference_mean: float
    arm_mean: float
    delta: float
    verdict: Verdict = Field(description="From the primary analysis, two-sided, after correction over the entry's "
                                         "family: helps (Δ > 0), hurts (Δ < 0) or no detectable difference.")
    ci: tuple[float, float] = Field(description="Primary 95% interval: seeds and test patients combined.")
    p: float = Field(description="Primary two-sided p (combined variance, Satterthwaite degrees of freedom).")
    p_holm: float = Field(description="`p`, Holm-corrected over the entry's family.")
    p_bonferroni: float = Field(description="`p`, Bonferroni-corrected over the entry's family.")
    mde: float = Field(description="Smallest |Δ| the primary test detects with 80% power (two-sided, α = 0.05).")
    df: float = Field(description="Satterthwaite degrees of freedom of the primary interval.")
    se_seeds: float = Field(description="Standard error of Δ from training seeds (test set fixed).")
    se_patients: float = Field(description="Standard error of Δ from test patients (models fixed).")
    family_size: int = Field(description="Comparisons in the entry's correction family.")
    t_ci: tuple[float, float] = Field(description="Secondary: t-interval over seeds alone.")
    boot_ci: tuple[float, float] = Field(description="Secondary: patient bootstrap interval alone.")
    p_t_greater: float = Field(description="Secondary: one-sided paired t-test over seeds, H1: the arm scores "
                                           "higher (the paper's test); uncorrected.")
    n_seeds: int
    transfer_efficiency: TransferEfficiency | None = Field(
        default=None, description="Against real_only only: Δ / Δ(real_extra) at the same ratio; None where the run "
                                  "holds no real_extra arm at this ratio, for real_extra itself and for other "
                                  "references.")
    subgroups: SubgroupAnalysis | None = Field(
        default=None, description="Against real_only only: Δ per patient group and the gaps between groups "
                                  "(`subgroups.analyse`); None for a task without patient attributes, for other "
                                  "references and in results written before subgroups were reported.")


class TaskResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: TaskMeta
    regime: str = Field(description="The task's regime (named training size) these arms trained in.")
    n_train_real: int
    n_val: int
    n_test: int
    n_test_patients: int
    baseline: ArmResult
    arms: list[ArmResult]
    comparisons: list[ComparisonResult]
    quality: list[ArmQuality] = Field(
        default_factory=list, description="Per synthetic arm, fidelity, memorisation and re-identification of its "
                                          "reviewed synthetic set; empty for a run without them (--no-quality) and "
                                          "for results written before they existed.")


class RunResult(BaseModel):
    schema_version: Literal["2"] = RESULT_SCHEMA_VERSION
    protocol_version: str
    smoke_profile_version: str | None = Field(default=None, description="The smoke profile's version for a run of "
                                              "it (config.profile smoke); None for a protocol run.")
    cxrbench_version: str
    created: datetime
    config: RunConfig
    generators: list[GeneratorMeta]
    tasks: list[TaskResult]
    incomplete: dict[str, list[str]] = Field(
        default_factory=dict, description="Per generator, the comparisons of its protocol family this run lacks "
                                          "(counted as p = 1 in the correction); empty for a complete run.")
    methods: dict[str, str] = Field(description="How every reported number was computed.")
    environment: dict[str, str]
    wall_seconds: float
