"""Condition policies (issue 18, item 5): single-disease label conditions and untransformed masks, the paper's best
practices, as exploratory run options; the protocol's conditions, keys and entries stay what they were."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from cxrbench.carried import conditions_digest
from cxrbench.cli import app
from cxrbench.conditions import ConditionPolicy
from cxrbench.geometry import IDENTITY_AFFINE
from cxrbench.plan import TaskPlan, plan_tasks, stage_key
from cxrbench.registry import get_task
from cxrbench.samples import SampleSet
from cxrbench.schemas import RunConfig, RunResult
from cxrbench.synthetic import load_synthetic_set
from cxrbench.tasks.embedded.tasks import PhantomClassification
from tests.conftest import TINY
from tests.test_bad_inputs import _refused_in_one_line, tripwire  # noqa: F401 - tripwire: a fixture
from tests.test_smoke_profile import refused_entry, refused_submission

runner = CliRunner()
SINGLE = ConditionPolicy(label_conditions="single")
UNTRANSFORMED = ConditionPolicy(mask_transforms=False)
PROTOCOL_DIGESTS = {
    "phantom_cls": "47f0f5bd48cfc7c2c66b29690778302146b95d2f6aa6cc2a50a5669d8391f02f",
    "phantom_seg": "e72d6a57c9d022397c7b741cf746acc476ba1b359ae1c256046d6206c17a4a0b",
}
"""`conditions_digest` of each task's 30 conditions of seed 3 on its first 40 training images, recorded from the code
before condition policies existed (commit a6de786)."""


@cache
def _train(name: str) -> SampleSet:
    return get_task(name).load(None, train_size=40).train


def _positives(conditions) -> np.ndarray:
    return np.array([list(c.labels.values()) for c in conditions], dtype=int)


@pytest.mark.parametrize("name", sorted(PROTOCOL_DIGESTS))
def test_the_protocols_conditions_are_bit_identical_to_before(name):
    task = get_task(name)
    assert conditions_digest(task.conditions(_train(name), 30, seed=3)) == PROTOCOL_DIGESTS[name]
    assert conditions_digest(task.conditions(_train(name), 30, seed=3, policy=ConditionPolicy())) == \
        PROTOCOL_DIGESTS[name]


@settings(max_examples=60, deadline=None)
@given(labels=arrays(np.int8, st.tuples(st.integers(1, 12), st.just(4)), elements=st.integers(0, 1)),
       n=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_single_keeps_one_positive_of_the_same_source_row(labels, n, seed):
    """The same rows as the protocol's conditions: each keeps exactly one of its positives (none: no finding)."""
    task = get_task("phantom_cls")
    train = SampleSet(np.zeros((len(labels), 2, 2), np.float32), labels, None,
                      np.arange(len(labels)).astype(str), np.arange(len(labels)).astype(str))
    multi = _positives(task.conditions(train, n, seed=seed)).reshape(n, 4)
    single = _positives(task.conditions(train, n, seed=seed, policy=SINGLE)).reshape(n, 4)
    assert np.array_equal(single.sum(axis=1), np.minimum(multi.sum(axis=1), 1))
    assert not (single & ~multi.astype(bool)).any()


def test_single_label_conditions_are_deterministic_per_seed_and_split_co_occurring_findings():
    task, train = get_task("phantom_cls"), _train("phantom_cls")
    first = task.conditions(train, 200, seed=5, policy=SINGLE)
    assert first == task.conditions(train, 200, seed=5, policy=SINGLE)
    assert first != task.conditions(train, 200, seed=6, policy=SINGLE)
    multi = _positives(task.conditions(train, 200, seed=5))
    assert (multi.sum(axis=1) > 1).any() and _positives(first).sum(axis=1).max() == 1


def test_single_changes_nothing_on_a_segmentation_task_of_one_label():
    task, train = get_task("phantom_seg"), _train("phantom_seg")
    assert conditions_digest(task.conditions(train, 30, seed=3, policy=SINGLE)) == PROTOCOL_DIGESTS["phantom_seg"]


def test_untransformed_masks_are_the_source_masks_with_the_identity_transform():
    task, train = get_task("phantom_seg"), _train("phantom_seg")
    row_of = {str(s): i for i, s in enumerate(train.sample_ids)}
    plain = task.conditions(train, 30, seed=3, policy=UNTRANSFORMED)
    assert [c.source_id for c in plain] == [c.source_id for c in task.conditions(train, 30, seed=3)]
    assert any(c.mask.any() for c in plain)
    for condition in plain:
        assert np.array_equal(condition.mask, train.masks[row_of[condition.source_id]])
        assert condition.transform == IDENTITY_AFFINE
        assert condition.labels == {"pneumothorax": int(condition.mask.any())}
    assert task.simulate(plain[:2], seed=0).shape == (2, *train.images.shape[1:])  # the oracle reads the identity


@cache
def _plans(label_conditions: str = "multi", mask_transforms: bool = True) -> list[TaskPlan]:
    return plan_tasks(RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["oracle"], **TINY,
                                label_conditions=label_conditions, mask_transforms=mask_transforms))


def _synthetic_keys(*policy) -> dict[tuple[str, str, int], str]:
    """Each cell's synthetic set key (the baseline's: its own key)."""
    return {(plan.task.meta.name, cell.generator, cell.seed): cell.synthetic_key or cell.key
            for plan in _plans(*policy) for cell in plan.cells()}


def test_the_protocols_policy_keeps_the_stage_keys_it_always_had():
    """The synthetic key's inputs under the protocol's policy are the four it had before policies existed, so every
    cached synthetic set (and the golden files' cells) stays valid."""
    for plan in _plans():
        arm = plan.arms[0]
        for cell in arm.cells:
            assert cell.synthetic_key == stage_key("synthetic", {"revision": arm.revision, "data": cell.data_key,
                                                                 "n": cell.n_synthetic, "seed": cell.seed})


def test_a_policy_changes_the_keys_of_the_tasks_it_changes_only():
    protocol, single, untransformed = _synthetic_keys(), _synthetic_keys("single"), _synthetic_keys("multi", False)
    for key, value in protocol.items():
        task, generator, _ = key
        baseline = generator == "real_only"
        assert (single[key] == value) == (baseline or task == "phantom_seg"), key
        assert (untransformed[key] == value) == (baseline or task == "phantom_cls"), key


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("policy, described", [
    ({"label_conditions": "single"}, "single-disease label conditions, masks randomly transformed"),
    ({"mask_transforms": False}, "multi-label label conditions, masks untransformed"),
], ids=["single_labels", "untransformed_masks"])
def test_submit_refuses_an_exploratory_policy_in_one_line(tmp_path, policy, described):
    refused_submission(tmp_path, f"is an exploratory run ({described}), not the protocol's conditions: submit a run "
                                 f"without --label-conditions or --no-mask-transforms", **policy)


@pytest.mark.reliability("hostile_file")
@pytest.mark.parametrize("field, value, expected", [
    ("label_conditions", "single", 'config.label_conditions: is "single"; the protocol\'s is "multi"'),
    ("mask_transforms", False, "config.mask_transforms: is false; the protocol's is true"),
], ids=["single_labels", "untransformed_masks"])
def test_validate_refuses_an_entry_that_claims_an_exploratory_policy(tmp_path, field, value, expected):
    assert expected in refused_entry(tmp_path, **{field: value})


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("args, expected", [
    (["--label-conditions", "both"], "Invalid value for '--label-conditions'"),
    (["--mask-transforms", "no"], "Got unexpected extra argument(s) (no)"),
], ids=["unknown_label_policy", "mask_transforms_takes_no_value"])
def test_bad_policy_options_fail_in_one_line(tripwire, args, expected):  # noqa: F811 - the fixture
    _refused_in_one_line(["run", "-g", "oracle", "--task", "phantom_cls", *args], expected)


def test_a_run_with_single_label_conditions_records_and_reports_its_policy(tmp_path, monkeypatch):
    """A tiny run (a 2-step recipe: the policy's path through the run is tested here, not its scores)."""
    monkeypatch.setattr(PhantomClassification, "schedule", replace(PhantomClassification.schedule, steps=2))
    out = tmp_path / "single.json"
    args = ["run", "-g", "oracle", "--task", "phantom_cls", "--train-size", "24", "--seeds", "2", "--ratios", "0.5",
            "--n-boot", "200", "--workers", "1", "--no-quality", "--label-conditions", "single", "--cache-dir",
            str(tmp_path / "cache"), "--out", str(out)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "conditions: single-disease label conditions, masks randomly transformed (exploratory" in done.output
    result = RunResult.model_validate_json(out.read_text())
    assert result.config.label_conditions == "single" and result.config.mask_transforms
    sets = sorted((tmp_path / "cache" / "synthetic").glob("*/*/manifest.json"))
    assert sets
    for manifest in sets:
        conditions = [entry.condition for entry in load_synthetic_set(manifest.parent)[0].entries]
        assert _positives(conditions).sum(axis=1).max() <= 1
