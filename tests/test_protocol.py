"""The protocol's rules (benchmark/protocol.py) as every caller sees them."""

import json

import pytest

from cxrbench import protocol
from cxrbench.errors import ConfigError, GeneratorError
from cxrbench.plan import checked_config
from cxrbench.protocol import (
    entry_references,
    family,
    required_references,
    run_regimes,
    serves_regime,
    synthetic_count,
)
from cxrbench.registry import generator_class, get_task, task_names
from cxrbench.schemas import DatasetRef, RunConfig
from cxrbench.submission import load_task_submission


def test_synthetic_count_rounds_and_never_drops_to_zero():
    assert [synthetic_count(r, 120) for r in (0.5, 1, 2, 0.001)] == [60, 120, 240, 1]
    assert synthetic_count(0.5, 5) == 2  # Python's round: half to even, as every committed entry was sized


def test_a_generator_is_compared_with_real_only_classic_aug_and_its_parent():
    assert required_references(generator_class("ldm_mask_proxy").meta) == ["real_only", "classic_aug", "ldm_mask"]
    assert required_references(generator_class("ldm_text").meta) == ["real_only", "classic_aug"]
    for control in ("oracle", "noise", "real_extra", "classic_aug"):
        assert required_references(generator_class(control).meta) == ["real_only"]
    assert entry_references(generator_class("ldm_mask_proxy").meta) == ["classic_aug", "ldm_mask"]


def test_the_family_is_every_task_regime_ratio_and_reference_the_generator_serves():
    tasks = [get_task(name).meta for name in ("phantom_cls", "phantom_seg")]
    members = family(generator_class("ldm_mask").meta, tasks)  # mask conditioning: phantom_seg only
    assert sorted(map(str, members)) == [f"phantom_seg/{regime} ratio 2 vs {reference}"
                                         for regime in ("full", "scarce") for reference in ("classic_aug", "real_only")]
    oracle = family(generator_class("oracle").meta, tasks)
    assert len(oracle) == 4 and {m.reference for m in oracle} == {"real_only"}


def test_real_extra_serves_only_regimes_that_leave_a_pool():
    meta = generator_class("real_extra").meta
    covid = get_task("covid_lung_seg").meta
    assert covid.regimes["full"] is None and not serves_regime(meta, None) and serves_regime(meta, 30)
    assert [m.regime for m in family(meta, [covid])] == ["scarce"]
    assert serves_regime(generator_class("oracle").meta, None)


def test_a_run_covers_every_regime_unless_told_otherwise():
    meta = get_task("phantom_seg").meta
    assert run_regimes(meta, None, None) == meta.regimes and list(meta.regimes) == ["scarce", "full"]
    assert run_regimes(meta, ["full"], None) == {"full": meta.regimes["full"]}
    assert run_regimes(meta, None, 24) == {"n24": 24}
    with pytest.raises(ConfigError, match="task phantom_seg has no regime 'huge'"):
        run_regimes(meta, ["huge"], None)
    with pytest.raises(ValueError, match="regimes or a train size, not both"):
        RunConfig(tasks=["phantom_seg"], generators=["oracle"], regimes=["full"], train_size=24)


def test_every_task_has_a_scarce_regime_smaller_than_its_full_one():
    for name in task_names():
        regimes = get_task(name).meta.regimes
        assert list(regimes)[:2] == ["scarce", "full"], name
        assert regimes["full"] is None or regimes["scarce"] < regimes["full"], name


def test_the_baseline_is_registered_under_the_protocols_name():
    meta = generator_class(protocol.BASELINE).meta
    assert meta.name == protocol.BASELINE and meta.role == "baseline" and meta.conditioning == []


def test_reserved_seeds_are_not_run_seeds():
    """The judge, the proxy, the feature encoder and the re-identification verifier must never be one of the compared
    models (run seeds are 0..n-1), nor one another."""
    most_seeds = max(get_task(name).meta.default_seeds for name in ("phantom_cls", "phantom_seg", "pneumonia_cls"))
    reserved = (protocol.JUDGE_SEED, protocol.PROXY_SEED, protocol.FEATURE_SEED, protocol.REID_SEED)
    assert min(reserved) >= most_seeds
    assert len(set(reserved)) == len(reserved)


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


def test_protocol_1_task_files_are_refused_and_filled_fidelity_is_refused(tmp_path):
    """A schema 1 or 2 task file holds a protocol 1 result, which protocol 2 cannot reuse: rerun, never mix."""
    data = {"schema_version": "1", "fidelity": {}, "privacy": {}, "result": {}}
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="holds a protocol 1 result .* rerun the generator"):
        load_task_submission(old)
    forged = tmp_path / "entry.json"
    forged.write_text(json.dumps({**data, "fidelity": {"fid": -5.0}}))
    with pytest.raises(ValueError, match="carries fidelity values, which no cxrbench computes"):
        load_task_submission(forged)
