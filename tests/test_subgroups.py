"""Subgroup effects: signs, intervals and the verdict sentence of an arm that helps one group and hurts another; the
gap interval's coverage; the phantom's attributes; results written before subgroups still load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from cxrbench import scoring
from cxrbench.errors import DataError
from cxrbench.registry import generator_class, get_task
from cxrbench.report import markdown, rich_report
from cxrbench.schemas import ArmResult, ComparisonResult, RunConfig, RunResult
from cxrbench.stats import MacroF1, MeanOfCases
from cxrbench.subgroups import Restricted, analyse, sex_and_age, value_groups
from cxrbench.tasks.real.attributes import parse_age, parse_sex

from .real_data import covid_subset, shared_dataset

N_PATIENTS = 60  # per group
SEEDS = 5


def _two_groups(effect_a: float, effect_b: float, rng: np.random.Generator) -> tuple[list, list, list[str], dict]:
    """Per-image scores of 2 x N_PATIENTS patients (2 images each) for SEEDS seeds of a baseline and an arm whose
    true effect is `effect_a` in group A and `effect_b` in group B; patient and seed noise as in real runs."""
    n = 2 * N_PATIENTS
    patient_level = rng.normal(0.7, 0.1, n)
    ids = [f"p{k}" for k in range(n) for _ in range(2)]
    in_a = np.repeat(np.arange(n) < N_PATIENTS, 2)
    effect = np.where(in_a, effect_a, effect_b)
    base, arm = [], []
    for _ in range(SEEDS):
        case = np.repeat(patient_level, 2) + rng.normal(0, 0.05, 2 * n)
        base.append(MeanOfCases(case + rng.normal(0, 0.01)))
        arm.append(MeanOfCases(case + effect + rng.normal(0, 0.01) + rng.normal(0, 0.01, 2 * n)))
    return arm, base, ids, {"sex": {"F": in_a, "M": ~in_a}}


def test_an_arm_that_helps_one_group_and_hurts_another_is_called_out():
    arm, base, ids, groups = _two_groups(0.05, -0.05, np.random.default_rng(0))
    result = analyse(arm, base, ids, groups, labels=None, label_names=["x"], n_boot=500)
    (sex,) = result.attributes
    female, male = sex.groups
    assert (female.group, male.group) == ("F", "M")
    assert female.delta > 0 and female.ci[0] > 0 and female.verdict == "helps"
    assert male.delta < 0 and male.ci[1] < 0 and male.verdict == "hurts"
    assert sex.gap.groups == ("F", "M") and sex.gap.ci[0] > 0
    assert abs(sex.gap.delta - (female.delta - male.delta)) < 1e-12
    assert sex.finding == "sex: helps F, hurts M" and result.findings == ["sex: helps F, hurts M"]
    assert result.family_size == 3 and sex.unassigned_patients == 0
    assert female.p <= female.p_holm <= 1  # Holm over the comparison's three hypotheses


def test_no_effect_gives_no_finding():
    arm, base, ids, groups = _two_groups(0.0, 0.0, np.random.default_rng(1))
    result = analyse(arm, base, ids, groups, labels=None, label_names=["x"], n_boot=300)
    assert result.findings == []
    assert all(g.verdict == "no detectable difference" for g in result.attributes[0].groups)


def test_gap_interval_covers_the_true_gap():
    """Coverage of the gap's 95% interval over simulated experiments with a true gap of 0.02: measured 0.995 over
    these 200 experiments (n_boot 300), conservative as the primary analysis is where per-case noise also varies
    by seed; asserted >= 0.9, which an interval that forgot one group's bootstrap variance fails."""
    rng = np.random.default_rng(2)
    covered = []
    for _ in range(200):
        arm, base, ids, groups = _two_groups(0.03, 0.01, rng)
        gap = analyse(arm, base, ids, groups, labels=None, label_names=["x"], n_boot=300).attributes[0].gap
        covered.append(gap.ci[0] <= 0.02 <= gap.ci[1])
    assert np.mean(covered) >= 0.9


def test_small_groups_and_labels_without_positives_get_a_reason():
    rng = np.random.default_rng(3)
    n = 30
    target = np.zeros((n, 2), np.int8)
    target[:20, 0] = rng.integers(0, 2, 20)
    target[:20, 1] = 1 - target[:20, 0]
    target[20:, 0] = 1  # the second group never holds label b
    metrics = [MacroF1(rng.integers(0, 2, (n, 2)), target) for _ in range(4)]
    groups = {"age": {"<60": np.arange(n) < 20, ">=60": np.arange(n) >= 20},
              "sex": {"F": np.arange(n) < 3, "M": np.arange(n) >= 3}}
    result = analyse(metrics[:2], metrics[2:], [f"p{i}" for i in range(n)], groups, labels=target,
                     label_names=["a", "b"], n_boot=200)
    age, sex = result.attributes
    assert age.groups[0].delta is not None
    assert age.groups[1].delta is None and "no positive case of b" in age.groups[1].reason
    assert age.gap.delta is None and age.gap.reason
    assert sex.groups[0].delta is None and "3 test patient(s)" in sex.groups[0].reason
    assert result.family_size == 6  # the hypotheses without numbers count (as p = 1)


def test_restricted_metric_scores_its_cases_alone():
    rng = np.random.default_rng(4)
    pred, target = rng.integers(0, 2, (40, 3)), rng.integers(0, 2, (40, 3))
    rows = np.flatnonzero(rng.random(40) < 0.5)
    assert Restricted(MacroF1(pred, target), rows).value() == pytest.approx(MacroF1(pred[rows], target[rows]).value())
    values = rng.random(40)
    assert Restricted(MeanOfCases(values), rows).value() == pytest.approx(values[rows].mean())


def test_unknown_values_are_in_no_group():
    groups = sex_and_age(["F", None, "M", "M"], [30.0, 70.0, None, 60.0])
    assert {k: m.tolist() for k, m in groups["sex"].items()} == {"F": [1, 0, 0, 0], "M": [0, 0, 1, 1]}
    assert {k: m.tolist() for k, m in groups["age"].items()} == {"<60": [1, 0, 0, 0], ">=60": [0, 1, 0, 1]}
    assert value_groups([None, None]) == {}


@pytest.mark.parametrize("name", ["phantom_cls", "phantom_seg"])
def test_phantom_attributes_are_deterministic_and_balanced(name):
    task = get_task(name)
    test = task.load(None).test
    first, again = task.subgroups(test, None), task.subgroups(test, None)
    patients = len(set(test.patient_ids.tolist()))
    for attribute in ("sex", "age"):
        assert list(first[attribute]) == (["F", "M"] if attribute == "sex" else ["<60", ">=60"])
        masks = list(first[attribute].values())
        assert all((a == b).all() for a, b in zip(masks, again[attribute].values(), strict=True))
        assert (masks[0] ^ masks[1]).all()  # every study in exactly one group
        shares = [len(set(test.patient_ids[m].tolist())) / patients for m in masks]
        assert min(shares) > 0.4, shares  # measured: 148/148 (sex), 164/132 (age) of phantom_cls's 296


def test_results_without_subgroups_still_load():
    old = {"generator": "g", "ratio": 1.0, "reference": "real_only", "reference_mean": 0.5, "arm_mean": 0.6,
           "delta": 0.1, "verdict": "helps", "ci": [0.05, 0.15], "p": 0.001, "p_holm": 0.002, "p_bonferroni": 0.002,
           "mde": 0.03, "df": 10.0, "se_seeds": 0.01, "se_patients": 0.01, "family_size": 2, "t_ci": [0.0, 0.2],
           "boot_ci": [0.0, 0.2], "p_t_greater": 0.01, "n_seeds": 5}
    assert ComparisonResult.model_validate(old).subgroups is None


def test_covid_attributes_follow_the_metadata_and_blanks_are_in_no_group():
    root = shared_dataset("covid-lungs").parent
    task = get_task("covid_lung_seg")
    test = task.load(root, train_size=30).test
    table = pd.read_csv(root / "covid-lungs" / "metadata.csv", dtype=str, keep_default_na=False)
    by_id = {Path(image).stem: (sex, age) for image, sex, age in zip(table.image, table.sex, table.age, strict=True)}
    groups = task.subgroups(test, root)
    for row, sample in enumerate(test.sample_ids.tolist()):
        sex, age = by_id[sample]
        assert [g for g, m in groups["sex"].items() if m[row]] == ([sex] if sex else [])
        band = [] if not age else ["<60" if float(age) < 60 else ">=60"]
        assert [g for g, m in groups["age"].items() if m[row]] == band
    assert get_task("pneumonia_cls").subgroups(test, root) == {}  # Kermany's files carry no attributes


@pytest.mark.parametrize(("field", "value", "expected"), [("sex", "X", "sex 'X' is not one of"),
                                                          ("age", "sixty", "age 'sixty' is not a number"),
                                                          ("age", "-3", "age '-3' is not a number of years from 0")])
def test_a_bad_attribute_names_the_row(tmp_path, field, value, expected):
    folder = covid_subset(tmp_path, 4)
    table = pd.read_csv(folder / "metadata.csv", dtype=str, keep_default_na=False)
    table.loc[2, field] = value
    table.to_csv(folder / "metadata.csv", index=False)
    with pytest.raises(DataError, match=f"metadata.csv line 4: column '{field}': {expected}"):
        get_task("covid_lung_seg").attributes(folder)


def test_ages_in_dicom_units_and_recording_errors():
    assert parse_age("058Y", "x") == 58 and parse_age("018M", "x") == 1.5
    assert parse_age("026W", "x") == pytest.approx(26 * 7 / 365.25)
    assert parse_age("148", "x") is None  # RSNA's published headers hold five such ages: unknown, not refused
    assert parse_sex("Unknown", "x") is None and parse_sex("Female", "x") == "F"


def test_scoring_adds_subgroups_against_real_only_and_the_report_shows_the_finding(monkeypatch):
    """An arm that helps the phantom's women and hurts its men, scored and reported; the primary numbers are the
    same with and without the subgroup analysis."""
    task = get_task("phantom_seg")
    splits = task.load(None, train_size=16)
    groups = task.subgroups(splits.test, None)
    female = groups["sex"]["F"]
    effect = {"real_only": 0.0, "classic_aug": 0.0, "ldm_mask": np.where(female, 0.06, -0.06)}

    def score_arm(task, splits, arm):
        rng = np.random.default_rng(len(arm.generator))
        metrics = [MeanOfCases(0.5 + effect[arm.generator] + rng.normal(0, 0.01) + rng.normal(0, 0.01, female.size))
                   for _ in range(3)]
        return scoring._Scored(metrics, ArmResult(generator=arm.generator, generator_revision="r", ratio=arm.ratio,
                                                  n_real=16, n_synthetic=32, seeds=[], mean=0.5, std=0.0))

    monkeypatch.setattr(scoring, "_score_arm", score_arm)

    def arm(name: str, ratio: float) -> scoring.ArmPredictions:
        return scoring.ArmPredictions(generator_class(name).meta, "-", ratio, 32, [])

    arms = [arm("ldm_mask", 2.0), arm("classic_aug", 2.0)]
    with_groups, without = (scoring.score_predictions([scoring.TaskPredictions(task, "scarce", splits,
                                                                               arm("real_only", 0.0), arms, arms,
                                                                               found)], n_boot=200).tasks[0]
                            for found in (groups, {}))
    compared = {(c.generator, c.reference): c for c in with_groups.comparisons}
    assert compared[("ldm_mask", "real_only")].subgroups.findings == ["sex: helps F, hurts M"]
    assert compared[("ldm_mask", "classic_aug")].subgroups is None
    for a, b in zip(with_groups.comparisons, without.comparisons, strict=True):
        assert a.model_dump(exclude={"subgroups"}) == b.model_dump(exclude={"subgroups"})
    result = RunResult(protocol_version="2", cxrbench_version="0", created="2025-01-01T00:00:00Z",
                       config=RunConfig(tasks=["phantom_seg"], generators=["ldm_mask"]), generators=[],
                       tasks=[with_groups], methods={}, environment={}, wall_seconds=0.0)
    line = "subgroups · phantom_seg · scarce · ldm_mask ×2 vs real_only: sex: helps F, hurts M"
    assert line in markdown(result)
    console = Console(record=True, width=200)
    console.print(rich_report(result))
    assert line in console.export_text()
    assert "subgroups ·" not in markdown(RunResult(**{**result.__dict__, "tasks": [without]}))
