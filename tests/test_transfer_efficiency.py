"""Transfer efficiency, Δ(arm) / Δ(real_extra): its value and Fieller interval on fabricated per-case scores, where
scoring stores it, what the report shows, and that validate recomputes it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from scipy import stats as sps

from cxrbench import scoring
from cxrbench.efficiency import transfer_ratio
from cxrbench.errors import SubmissionError
from cxrbench.registry import generator_class, get_task
from cxrbench.report import EFFICIENCY_TITLE, markdown, rich_report
from cxrbench.schemas import ArmResult, RunConfig, RunResult
from cxrbench.stats import MeanOfCases, compare, patient_bootstrap_weights
from cxrbench.validate import validate

SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"
N_SEEDS, N_PATIENTS, N_BOOT = 4, 30, 300


def _cases(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Patient ids of 2 cases per patient, and real_only's per-case scores (seeds, cases)."""
    ids = [f"p{j}" for j in np.repeat(np.arange(N_PATIENTS), 2)]
    return ids, rng.random((N_SEEDS, len(ids)))


def _metrics(scores: np.ndarray) -> list[MeanOfCases]:
    return [MeanOfCases(row) for row in scores]


def _ratio(arm: np.ndarray, pool: np.ndarray, base: np.ndarray, ids: list[str], n_boot: int = N_BOOT):
    return transfer_ratio(_metrics(arm), _metrics(pool), _metrics(base), ids, n_boot=n_boot, seed=0)


def _pool_scores(rng: np.random.Generator, base: np.ndarray, effect: float) -> np.ndarray:
    """real_extra: real_only plus a per-patient effect of mean `effect`, and seed and case noise."""
    per_patient = np.repeat(rng.normal(effect, 0.05, N_PATIENTS), 2)
    return base + per_patient + rng.normal(0, 0.01, (N_SEEDS, 1)) + rng.normal(0, 0.02, base.shape)


def test_an_arm_that_scores_as_real_extra_delivers_all_of_its_value():
    rng = np.random.default_rng(1)
    ids, base = _cases(rng)
    pool = _pool_scores(rng, base, 0.1)
    ratio = _ratio(pool.copy(), pool, base, ids)
    assert ratio.value == pytest.approx(1.0, abs=1e-12) and ratio.note is None
    assert ratio.ci == pytest.approx((1.0, 1.0), abs=1e-9)


def test_an_arm_that_scores_as_real_only_delivers_none_of_it():
    rng = np.random.default_rng(2)
    ids, base = _cases(rng)
    pool = _pool_scores(rng, base, 0.1)
    ratio = _ratio(base.copy(), pool, base, ids)
    assert ratio.value == pytest.approx(0.0, abs=1e-12)
    assert ratio.ci == pytest.approx((0.0, 0.0), abs=1e-9)


def test_no_ratio_when_real_extras_own_interval_includes_zero():
    """Then no value and no interval, but the reason; the decision is the pool comparison's own primary interval."""
    rng = np.random.default_rng(3)
    ids, base = _cases(rng)
    pool = _pool_scores(rng, base, 0.0)
    own = compare(_metrics(pool), _metrics(base), ids, n_boot=N_BOOT, seed=0)
    assert own.primary_ci[0] < 0 < own.primary_ci[1]
    ratio = _ratio(_pool_scores(rng, base, 0.05), pool, base, ids)
    assert (ratio.value, ratio.ci) == (None, None)
    assert ratio.note == (f"Δ(real_extra) = {own.delta:+.3f}, 95% CI [{own.primary_ci[0]:+.3f}, "
                          f"{own.primary_ci[1]:+.3f}] includes 0: the pool's value is not detectable here")


def test_the_bounds_solve_fiellers_equation_with_the_joint_covariance():
    """At each bound, (Δa − θΔr)² = t²·var(Δa − θΔr), the variance from an independent computation of both
    sources: per-seed covariance / n plus the covariance of paired replicates from the same patient weights."""
    rng = np.random.default_rng(4)
    ids, base = _cases(rng)
    pool = _pool_scores(rng, base, 0.1)
    arm = base + 0.5 * (pool - base) + rng.normal(0, 0.03, base.shape)
    ratio = _ratio(arm, pool, base, ids)
    weights = patient_bootstrap_weights(ids, N_BOOT, np.random.default_rng(0))
    diffs = np.array([(x - base).mean(axis=1) for x in (arm, pool)])
    boot = np.array([[np.mean([np.average(row, weights=w) for row in x - base]) for w in weights] for x in (arm, pool)])
    low, high = ratio.ci
    assert low < ratio.value < high
    for theta in (low, high):
        contrast_seeds = diffs[0] - theta * diffs[1]
        contrast_boot = boot[0] - theta * boot[1]
        variance = np.var(contrast_seeds, ddof=1) / N_SEEDS + np.var(contrast_boot, ddof=1)
        at_value = (diffs[0] - ratio.value * diffs[1], boot[0] - ratio.value * boot[1])
        v_seeds, v_patients = np.var(at_value[0], ddof=1) / N_SEEDS, np.var(at_value[1], ddof=1)
        df = (v_seeds + v_patients) ** 2 / (v_seeds**2 / (N_SEEDS - 1) + v_patients**2 / (N_PATIENTS - 1))
        t = sps.t.ppf(0.975, df)
        assert contrast_seeds.mean() ** 2 == pytest.approx(t**2 * variance, rel=1e-6)


def test_the_interval_covers_the_known_ratio():
    """Simulated: per patient the arm gains 0.4 of what real_extra gains (plus noise of its own); the seeds add
    model noise to every arm, real_only's shared by both differences. The 95% interval covers 0.4 in about 95% of
    the draws where real_extra's value is detectable."""
    rng = np.random.default_rng(5)
    covered = meaningful = 0
    for _ in range(150):
        ids, base = _cases(rng)
        gain = np.repeat(rng.normal(0.1, 0.1, N_PATIENTS), 2)
        own = np.repeat(rng.normal(0, 0.05, N_PATIENTS), 2)
        pool = base + gain + rng.normal(0, 0.02, (N_SEEDS, 1)) + rng.normal(0, 0.02, base.shape)
        arm = base + 0.4 * gain + own + rng.normal(0, 0.02, (N_SEEDS, 1)) + rng.normal(0, 0.02, base.shape)
        ratio = _ratio(arm, pool, base, ids, n_boot=200)
        if ratio.ci is not None:
            meaningful += 1
            covered += ratio.ci[0] <= 0.4 <= ratio.ci[1]
    assert meaningful >= 100
    assert 0.88 <= covered / meaningful <= 1.0, (covered, meaningful)


# --- scoring, report and validation ------------------------------------------------------------------------------

LEVELS = {"real_only": 0.5, "real_extra": 0.6, "ldm_mask": 0.55, "classic_aug": 0.52}


@pytest.fixture(scope="module")
def splits():
    return get_task("phantom_seg").load(None, train_size=16)


def _scored(monkeypatch, splits, names: list[str], levels: dict[str, float] = LEVELS):
    """A scarce-regime TaskResult of phantom_seg whose arms score `levels` plus per-seed and per-case noise."""
    def score_arm(task, splits, arm):
        n = len(splits.test)
        rng = np.random.default_rng(len(arm.generator))
        metrics = [MeanOfCases(levels[arm.generator] + rng.normal(0, 0.02) + rng.normal(0, 0.01, n))
                   for _ in range(3)]
        return scoring._Scored(metrics, ArmResult(generator=arm.generator, generator_revision="r", ratio=arm.ratio,
                                                  n_real=16, n_synthetic=32, seeds=[], mean=levels[arm.generator],
                                                  std=0.0))

    monkeypatch.setattr(scoring, "_score_arm", score_arm)
    task = get_task("phantom_seg")

    def arm(name: str, ratio: float) -> scoring.ArmPredictions:
        return scoring.ArmPredictions(generator_class(name).meta, "-", ratio, 32, [])

    arms = [arm(name, 2.0) for name in names]
    item = scoring.TaskPredictions(task, "scarce", splits, arm("real_only", 0.0), arms, arms)
    (result,) = scoring.score_predictions([item], n_boot=200).tasks
    return result


def _run_result(task) -> RunResult:
    return RunResult(protocol_version="2", cxrbench_version="0", created="2025-01-01T00:00:00Z",
                     config=RunConfig(tasks=["phantom_seg"], generators=["ldm_mask"], profile="protocol"),
                     generators=[], tasks=[task], methods={}, environment={}, wall_seconds=0.0)


def test_scoring_stores_it_on_each_arms_comparison_with_real_only(monkeypatch, splits):
    task = _scored(monkeypatch, splits, ["ldm_mask", "classic_aug", "real_extra"])
    found = {(c.generator, c.reference): c.transfer_efficiency for c in task.comparisons}
    assert found[("real_extra", "real_only")] is None  # its own ratio would be 1 by definition
    assert found[("ldm_mask", "classic_aug")] is None  # the denominator is real_extra's Δ against real_only
    deltas = {(c.generator, c.reference): c.delta for c in task.comparisons}
    for name in ("ldm_mask", "classic_aug"):
        efficiency = found[(name, "real_only")]
        assert efficiency.reference == "real_extra"
        assert efficiency.value == pytest.approx(deltas[(name, "real_only")] / deltas[("real_extra", "real_only")])
        assert efficiency.ci_low < efficiency.value < efficiency.ci_high


def test_a_run_without_real_extra_has_no_efficiency(monkeypatch, splits):
    task = _scored(monkeypatch, splits, ["ldm_mask", "classic_aug"])
    assert all(c.transfer_efficiency is None for c in task.comparisons)
    result = _run_result(task)
    assert EFFICIENCY_TITLE not in markdown(result)
    console = Console(record=True, width=100)
    console.print(rich_report(result))
    assert EFFICIENCY_TITLE not in console.export_text()


def test_the_report_shows_it_in_both_formats(monkeypatch, splits):
    task = _scored(monkeypatch, splits, ["ldm_mask", "classic_aug", "real_extra"])
    efficiency = next(c.transfer_efficiency for c in task.comparisons
                      if c.generator == "ldm_mask" and c.reference == "real_only")
    shown = f"{efficiency.value:.2f}", f"[{efficiency.ci_low:.2f}, {efficiency.ci_high:.2f}]"
    result = _run_result(task)
    text = markdown(result)
    assert EFFICIENCY_TITLE in text
    assert f"| phantom_seg | scarce | ldm_mask | 2 | {shown[0]} | {shown[1]} |  |" in text
    console = Console(record=True, width=100)
    console.print(rich_report(result))
    terminal = console.export_text()
    assert EFFICIENCY_TITLE in terminal
    assert any(line.split()[:2] == ["ldm_mask", "2"] and shown[0] in line and shown[1] in line
               for line in terminal.splitlines()), terminal


def test_the_report_gives_the_reason_when_there_is_no_value(monkeypatch, splits):
    task = _scored(monkeypatch, splits, ["ldm_mask", "real_extra"], {**LEVELS, "real_extra": 0.5})
    efficiency = next(c.transfer_efficiency for c in task.comparisons if c.generator == "ldm_mask")
    assert efficiency.value is None and "includes 0" in efficiency.note
    assert f"| ldm_mask | 2 | n/a |  | {efficiency.note} |" in markdown(_run_result(task))


@pytest.mark.reliability("hostile_file")
def test_validate_refuses_an_efficiency_the_predictions_do_not_give(tmp_path):
    """A committed entry holds no real_extra arm, so its recomputed efficiency is None: a stored one is caught
    (validate recomputes the field like every other number)."""
    stored = {"value": 0.9, "ci_low": 0.5, "ci_high": 1.2, "reference": "real_extra", "note": None}
    folder = tmp_path / "oracle"
    shutil.copytree(SUBMISSIONS / "oracle", folder)
    path = folder / "embedded__phantom_cls__scarce.json"
    data = json.loads(path.read_text())
    data["result"]["comparisons"][0]["transfer_efficiency"] = stored
    path.write_text(json.dumps(data))
    with pytest.raises(SubmissionError) as caught:
        validate([folder])
    assert (f"{path}: result.comparisons[0].transfer_efficiency: is {stored!r}; recomputed from the stored "
            f"predictions: None") in str(caught.value)
