"""The protocol's rules (benchmark/protocol.py) as every caller sees them."""

import json
from pathlib import Path

import pytest

from cxrbench import protocol
from cxrbench.errors import GeneratorError
from cxrbench.plan import checked_config
from cxrbench.protocol import ArmRole, references, synthetic_count
from cxrbench.registry import generator_class, get_task
from cxrbench.schemas import DatasetRef, RunConfig
from cxrbench.submission import load_task_submission

REPO = Path(__file__).resolve().parents[1]


def test_synthetic_count_rounds_and_never_drops_to_zero():
    assert [synthetic_count(r, 120) for r in (0.5, 1, 2, 0.001)] == [60, 120, 240, 1]
    assert synthetic_count(0.5, 5) == 2  # Python's round: half to even, as every committed entry was sized


def test_a_generator_is_compared_with_baselines_and_its_parent_at_its_ratio_only():
    arm = ArmRole("ldm_mask_proxy", "generator", 2.0, variant_of="ldm_mask")
    others = [ArmRole("classic_aug", "baseline", 2.0), ArmRole("classic_aug", "baseline", 1.0),
              ArmRole("ldm_mask", "generator", 2.0), ArmRole("ldm_text", "generator", 2.0),
              ArmRole("oracle", "control", 2.0), arm]
    assert [(r.generator, r.ratio) for r in references(arm, others)] == [("classic_aug", 2.0), ("ldm_mask", 2.0)]
    assert references(ArmRole("oracle", "control", 2.0), others) == []
    assert references(ArmRole("classic_aug", "baseline", 2.0), others) == []


def test_the_baseline_is_registered_under_the_protocols_name():
    meta = generator_class(protocol.BASELINE).meta
    assert meta.name == protocol.BASELINE and meta.role == "baseline" and meta.conditioning == []


def test_reserved_seeds_are_not_run_seeds():
    """The judge and the proxy must never be one of the compared models (run seeds are 0..n-1)."""
    most_seeds = max(get_task(name).meta.default_seeds for name in ("phantom_cls", "phantom_seg", "pneumonia_cls"))
    assert min(protocol.JUDGE_SEED, protocol.PROXY_SEED) >= most_seeds
    assert protocol.JUDGE_SEED != protocol.PROXY_SEED


@pytest.mark.parametrize("split, refused", [("test", True), ("val", True), ("train", False)])
def test_a_generator_declaring_a_tasks_val_or_test_data_is_refused_at_plan_time(monkeypatch, split, refused):
    cls = generator_class("noise")
    monkeypatch.setattr(cls, "meta", cls.meta.model_copy(
        update={"trained_on": [DatasetRef(dataset="elsewhere", split="all"), DatasetRef(dataset="phantom_seg",
                                                                                          split=split)]}))
    config = RunConfig(tasks=["phantom_seg"], generators=["noise"])
    if refused:
        with pytest.raises(GeneratorError, match=f"noise declares it was trained on phantom_seg/{split}"):
            checked_config(config)
    else:
        assert checked_config(config).tasks == ["phantom_seg"]


def test_a_real_tasks_dataset_folder_counts_as_its_data(monkeypatch):
    cls = generator_class("noise")
    monkeypatch.setattr(cls, "meta", cls.meta.model_copy(
        update={"trained_on": [DatasetRef(dataset="pneumonia-kermany", split="test")]}))
    with pytest.raises(GeneratorError, match="pneumonia-kermany/test: data of task pneumonia_cls"):
        checked_config(RunConfig(tasks=["pneumonia_cls"], generators=["noise"]))


def test_version_1_entries_upgrade_and_filled_fidelity_is_refused(tmp_path):
    """Schema 1 declared fidelity/privacy maps that no cxrbench filled: empty ones upgrade, filled ones are forged."""
    source = REPO / "submissions" / "noise" / "embedded__phantom_seg.json"
    data = json.loads(source.read_text())
    assert data["schema_version"] == "1" and data["fidelity"] == {} and data["privacy"] == {}
    assert load_task_submission(source).schema_version == protocol.SUBMISSION_SCHEMA_VERSION
    forged = tmp_path / "entry.json"
    forged.write_text(json.dumps({**data, "fidelity": {"fid": -5.0}}))
    with pytest.raises(ValueError, match="carries fidelity values, which no cxrbench computes"):
        load_task_submission(forged)

