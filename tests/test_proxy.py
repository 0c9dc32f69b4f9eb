"""Proxy filtering and fine-tuning (tiny preset): rejection sampling, cached rounds, notes, leakage guard."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from safetensors.numpy import load_file

from cxrbench.cache import Cache
from cxrbench.cell import synthetic_set
from cxrbench.conditions import LabelCondition, MaskCondition
from cxrbench.fitting import ready_generator
from cxrbench.generators.ldm.proxy import Proxy, train_proxy
from cxrbench.generators.ldm.selection import rejection_sample
from cxrbench.plan import first_ratio_cell, first_regime_plan
from cxrbench.protocol import JUDGE_SEED, PROXY_SEED
from cxrbench.registry import generator_class, get_task
from cxrbench.samples import SampleSet, Splits
from cxrbench.schemas import RunConfig
from cxrbench.synthetic import MANIFEST, SyntheticManifest
from cxrbench.tasks.downstream.metrics import dice_per_image
from cxrbench.tasks.downstream.segmenter import predict_masks
from cxrbench.tasks.embedded.tasks import PhantomSegmentation

TINY_PROXY = {"preset": "tiny", "refine": {"rounds": 1, "finetune_steps": 2, "max_draws": 2}}


def test_rejection_sampling_redraws_only_the_rejected_and_always_delivers():
    conditions = [LabelCondition(labels={"a": i % 2}) for i in range(6)]
    seeds_seen = []

    def generate(asked, seed):
        seeds_seen.append((seed, len(asked)))
        return np.full((len(asked), 2, 2), float(seed != 3), np.float32)

    def score(images, asked):  # condition a=1 is never accepted; a=0 only from the second draw on
        return np.array([0.0 if c.labels["a"] else float(img[0, 0] > 0) for img, c in zip(images, asked)])

    images, scores, notes = rejection_sample(generate, score, conditions, seed=3, threshold=0.5, max_draws=3)
    assert images.shape == (6, 2, 2) and seeds_seen[0] == (3, 6)  # draw 0 is the plain generator's seed
    assert [n for _, n in seeds_seen] == [6, 6, 3]  # only still-rejected conditions are drawn again
    assert notes["requested"] == 6 and notes["drawn"] == 15 and notes["accepted"] == 3
    assert notes["delivered_below_threshold"] == 3
    assert notes["per_condition"]['{"a": 0}'] == {"drawn": 6, "accepted": 3, "acceptance_rate": 0.5}
    assert notes["per_condition"]['{"a": 1}']["acceptance_rate"] == 0.0


def _poisoned(clean_load):
    """Val and test images NaN and renamed: any model that saw them would carry NaN weights or those ids."""
    def load(self, root, *, train_size=None, cache_dir=None):
        splits = clean_load(self, root, train_size=train_size, cache_dir=cache_dir)

        def poison(part: SampleSet) -> SampleSet:
            ids = np.array([f"poison/{i}" for i in part.sample_ids])
            return SampleSet(np.full_like(part.images, np.nan), part.labels, part.masks, part.patient_ids, ids)
        return Splits(splits.train, poison(splits.val), poison(splits.test))
    return load


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    """ldm_mask_proxy (tiny, one round) fitted and sampled through the runner's path, on poisoned val/test."""
    config = RunConfig(tasks=["phantom_seg"], generators=["ldm_mask_proxy"], train_size=16, ratios=[0.25],
                       generator_config={"ldm_mask_proxy": TINY_PROXY})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PhantomSegmentation, "load", _poisoned(PhantomSegmentation.load))
        plan = first_regime_plan("phantom_seg", config)
        _, cell = first_ratio_cell(plan, "ldm_mask_proxy", 0)
        cache = Cache(tmp_path_factory.mktemp("proxy-cache"))
        synthetic_set(cell, cache, plan.splits)
    return plan, cell, cache, ready_generator(cell, cache, plan.splits.train)


def test_each_round_is_its_own_cached_fit_with_its_acceptance_rate(refined):
    plan, _, cache, generator = refined
    fits = list((cache.root / "fit").glob("*/*/ldm.json"))
    assert len(fits) == 3  # plain ldm_mask, round 0 (proxy trained), round 1 (fine-tuned)
    assert len([f for f in fits if (f.parent / "rounds.json").is_file()]) == 2
    (round_one,) = generator.history
    assert round_one["round"] == 1
    assert round_one["candidates"] == generator.refine.candidates_per_image * len(plan.splits.train)
    assert round_one["acceptance_rate"] == round_one["accepted"] / round_one["candidates"]
    assert round_one["accepted"] == sum(group["accepted"] for group in round_one["per_condition"].values())
    # the candidates are the training images' own conditions, candidates_per_image times each
    positives = int(plan.splits.train.masks.any(axis=(1, 2)).sum())
    per_image = generator.refine.candidates_per_image
    assert {group: counts["drawn"] for group, counts in round_one["per_condition"].items()} == {
        '{"pneumothorax": 0}': per_image * (len(plan.splits.train) - positives),
        '{"pneumothorax": 1}': per_image * positives}


def test_filtered_generation_delivers_the_count_and_records_acceptance(refined):
    plan, cell, cache, generator = refined
    manifest = SyntheticManifest.model_validate_json(
        (cache.path("synthetic", cell.synthetic_key) / MANIFEST).read_text())
    assert manifest.notes["filter"] == "proxy" and manifest.notes["requested"] == len(manifest.entries) == 4
    conditions = plan.task.conditions(plan.splits.train, 6, seed=1)
    images = generator.checked_generate(conditions, seed=2)
    notes = generator.generation_notes()
    assert images.shape == (6, 64, 64)
    # draw 0 is the plain generator's; only the conditions the proxy rejected there are drawn again (max_draws 2),
    # and each keeps its better-scored image
    threshold = generator.refine.threshold
    first = generator.scores(generator.plain.generate(generator, conditions, seed=2), conditions)
    delivered = generator.scores(images, conditions)
    assert notes["requested"] == 6 and notes["drawn"] == 6 + int((first < threshold).sum())
    assert notes["accepted"] == int((delivered >= threshold).sum()) == 6 - notes["delivered_below_threshold"]
    assert (delivered >= first).all()
    assert sum(g["drawn"] for g in notes["per_condition"].values()) == notes["drawn"]
    assert notes["finetune_rounds"] == generator.history


def test_the_proxy_is_the_task_recipe_with_its_own_seed_not_the_judge_or_a_run_model(monkeypatch):
    """The proxy grades real test images exactly as the task's recipe trained on the same split with PROXY_SEED,
    and unlike the judge's model (JUDGE_SEED) or a run seed's (the real_only baseline's): a filter built on it is
    never graded by itself. A short schedule keeps it quick: models of different seeds still differ."""
    task = get_task("phantom_seg")
    monkeypatch.setattr(type(task), "schedule", replace(task.schedule, steps=10))
    splits = task.load(None, train_size=16)
    asked = [MaskCondition(labels={"pneumothorax": int(m.any())}, mask=m, source_id=str(i))
             for m, i in zip(splits.test.masks, splits.test.sample_ids)]
    graded = train_proxy("phantom_seg", splits.train, device="cpu").scores(splits.test.images, asked, device="cpu")

    def recipe_dice(seed: int) -> float:
        """The recipe's model of `seed` at the fixed 0.5 threshold the proxy grades with (no val post-processing)."""
        masks = predict_masks(task.train_model(splits.train, seed=seed, device="cpu"), splits.test.images, device="cpu")
        return float(dice_per_image(masks, splits.test.masks).mean())

    assert graded.mean() == pytest.approx(recipe_dice(PROXY_SEED), abs=1e-12)
    for other in (JUDGE_SEED, *range(task.meta.default_seeds)):
        assert graded.mean() != pytest.approx(recipe_dice(other), abs=1e-9), other


def test_the_proxy_never_sees_val_or_test(refined):
    plan, _, cache, _ = refined
    for proxy_dir in (cache.root / "fit").glob("*/*/proxy"):
        trained_on = json.loads((proxy_dir / "proxy.json").read_text())["trained_on"]
        assert sorted(trained_on) == sorted(plan.splits.train.sample_ids.tolist())
        assert all(np.isfinite(w).all() for w in load_file(proxy_dir / "proxy.safetensors").values())


def test_a_variant_is_compared_with_the_generator_it_refines(monkeypatch):
    """Scoring adds proxy-vs-plain to the usual comparisons with real_only (stored predictions faked)."""
    from cxrbench import scoring
    from cxrbench.schemas import ArmResult
    from cxrbench.stats import MeanOfCases

    level = {"real_only": 0.5, "ldm_mask": 0.6, "ldm_mask_proxy": 0.7}

    def score_arm(task, splits, arm):
        n = len(splits.test)
        metrics = [MeanOfCases(np.full(n, level[arm.generator]) + 0.01 * np.arange(n) % 3 * s) for s in range(3)]
        return scoring._Scored(metrics, ArmResult(generator=arm.generator, generator_revision="r", ratio=arm.ratio,
                                                  n_real=4, n_synthetic=8, seeds=[], mean=level[arm.generator],
                                                  std=0.0))

    monkeypatch.setattr(scoring, "_score_arm", score_arm)
    task = get_task("phantom_seg")
    splits = task.load(None, train_size=16)

    def arm(name: str, ratio: float) -> scoring.ArmPredictions:
        return scoring.ArmPredictions(generator_class(name).meta, "-", ratio, 8, [])

    arms = [arm("ldm_mask_proxy", 2.0), arm("ldm_mask", 2.0)]
    item = scoring.TaskPredictions(task, "scarce", splits, arm("real_only", 0.0), arms, [])
    (result,) = scoring.score_predictions([item], n_boot=100).tasks
    pairs = {(c.generator, c.reference): round(c.delta, 6) for c in result.comparisons}
    assert pairs == {("ldm_mask_proxy", "real_only"): 0.2, ("ldm_mask_proxy", "ldm_mask"): 0.1,
                     ("ldm_mask", "real_only"): 0.1}


def test_each_round_starts_from_what_the_round_before_hands_on():
    meta = get_task("phantom_seg").meta
    round_one = generator_class("ldm_mask_proxy")(meta, preset="tiny", refine={"rounds": 1})
    round_zero = round_one.refines()
    plain = round_zero.refines()
    assert (round_zero.refine.rounds, plain.meta.name) == (0, "ldm_mask")
    plain.model = "the plain fit"  # a stand-in: handing on only passes it along
    round_zero.start_from(plain)
    assert (round_zero.model, round_zero.proxy, round_zero.history) == ("the plain fit", None, [])
    round_zero.proxy, round_zero.history = "its proxy", [{"round": 0}]
    round_one.start_from(round_zero)
    round_one.history.append({"round": 1})
    assert (round_one.model, round_one.proxy) == ("the plain fit", "its proxy")
    assert round_zero.history == [{"round": 0}]  # a later round never rewrites an earlier round's record


def test_a_saved_proxy_loads_into_the_tasks_untrained_model(tmp_path):
    task = get_task("phantom_cls")
    splits = task.load(None, train_size=16)
    proxy = Proxy(task=task, model=task.untrained_model(), trained_on=["a", "b"])
    proxy.save(tmp_path)
    loaded = Proxy.load(tmp_path)
    conditions = task.conditions(splits.train, 8, seed=0)
    assert loaded.task.meta == task.meta and loaded.trained_on == ["a", "b"]
    np.testing.assert_array_equal(loaded.scores(splits.val.images[:8], conditions, device="cpu"),
                                  proxy.scores(splits.val.images[:8], conditions, device="cpu"))
