"""The v2 recipes' scores: exact F1 thresholds, segmentation post-processing chosen on val, the secondary
numbers, the two-class macro F1 of single-label tasks, and a data identity that a recipe change leaves alone."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from cxrbench.registry import generator_class, get_task
from cxrbench.samples import SampleSet, Splits
from cxrbench.scoring import ArmPredictions, _score_arm
from cxrbench.tasks.downstream.metrics import dice_per_image, f1_counts, val_thresholds
from cxrbench.tasks.downstream.postprocess import PostProcess, choose_postprocess, grid, min_areas
from cxrbench.tasks.real.open_suite import PneumoniaKermany


def _sample_set(images, labels, masks=None, split: str = "test") -> SampleSet:
    n = len(images)
    return SampleSet(np.asarray(images, np.float32), np.asarray(labels, np.int8).reshape(n, -1), masks,
                     np.array([f"{split}-p{i}" for i in range(n)]), np.array([f"{split}-s{i}" for i in range(n)]))


def _splits(train: SampleSet, val: SampleSet, test: SampleSet) -> Splits:
    """Splits of parts whose patients may coincide (these tests score, they never train)."""
    def renamed(part: SampleSet, split: str) -> SampleSet:
        return SampleSet(part.images, part.labels, part.masks, np.char.add(f"{split}:", part.patient_ids),
                         part.sample_ids)
    return Splits(renamed(train, "train"), renamed(val, "val"), renamed(test, "test"))


# --- val thresholds --------------------------------------------------------------------------------------------

def test_a_three_way_tie_goes_to_the_lowest_threshold_where_float_f1_differs_in_the_last_bit():
    prob = np.array([0.05, 0.16, 0.28, 0.39, 0.5, 0.61, 0.73, 0.84, 0.95])
    target = np.array([0, 1, 0, 0, 1, 0, 0, 1, 1])
    cuts, numerator, denominator = f1_counts(prob, target)
    f1 = {float(c): Fraction(int(a), int(b)) for c, a, b in zip(cuts, numerator, denominator)}
    assert [c for c, v in f1.items() if v == max(f1.values())] == [0.16, 0.5, 0.84]  # all exactly 2/3
    from sklearn.metrics import precision_recall_curve

    precision, recall, sk_cuts = precision_recall_curve(target, prob)
    sk_f1 = dict(zip(sk_cuts.tolist(), (2 * precision * recall / (precision + recall))[:-1].tolist()))
    assert len({sk_f1[0.16], sk_f1[0.5], sk_f1[0.84]}) > 1  # the float route settles the tie by rounding
    assert val_thresholds(prob[:, None], target[:, None])[0] == 0.16
    # the order of the rows changes nothing
    order = np.random.default_rng(0).permutation(len(prob))
    assert val_thresholds(prob[order, None], target[order, None])[0] == 0.16


def test_val_thresholds_match_sklearn_where_f1_has_one_maximum():
    from sklearn.metrics import precision_recall_curve

    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        n = int(rng.integers(10, 200))
        prob, target = rng.random((n, 2)), (rng.random((n, 2)) < 0.4).astype(np.int8)
        for k in range(2):
            if target[:, k].min() == target[:, k].max():
                continue
            cuts, numerator, denominator = f1_counts(prob[:, k], target[:, k])
            exact = [Fraction(int(a), int(b)) for a, b in zip(numerator, denominator)]
            if exact.count(max(exact)) > 1:
                continue  # a tie: the rounding of sklearn's F1 decides it, ours does not
            precision, recall, sk_cuts = precision_recall_curve(target[:, k], prob[:, k])
            f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
            assert val_thresholds(prob, target)[k] == sk_cuts[int(np.argmax(f1[:-1]))]
            checked += 1
    assert checked > 50


def test_a_label_with_one_class_on_val_keeps_one_half():
    prob = np.array([[0.2, 0.1], [0.9, 0.7], [0.4, 0.3]])
    target = np.array([[0, 1], [1, 1], [0, 1]])
    assert val_thresholds(prob, target).tolist() == [0.9, 0.5]


# --- segmentation post-processing ------------------------------------------------------------------------------

def test_the_grid_is_in_tie_order_and_scales_areas_with_resolution():
    assert min_areas(64) == (0, 10, 20, 40, 80, 160)
    assert min_areas(256) == (0, 160, 320, 640, 1280, 2560)
    candidates = grid(64)
    assert candidates[0] == PostProcess(0.3, 0) and candidates[1] == PostProcess(0.3, 10)
    assert candidates[-1] == PostProcess(0.7, 160) and len(candidates) == 30


def test_a_mask_below_the_minimum_area_is_emptied_as_a_whole():
    prob = np.zeros((2, 8, 8), np.float32)
    prob[0, :3, :3] = 0.9  # 9 pixels
    prob[1, :4, :4] = 0.9  # 16 pixels
    masks = PostProcess(0.5, 10).apply(prob)
    assert masks.dtype == bool and not masks[0].any() and masks[1].sum() == 16
    assert PostProcess(0.95, 0).apply(prob).sum() == 0


def test_val_chooses_the_area_that_drops_stray_pixels_and_ties_go_to_the_lowest_threshold_and_area():
    target = np.zeros((4, 64, 64), bool)
    target[0, 10:30, 10:30] = True
    target[1, 20:40, 20:40] = True
    prob = np.where(target, 0.9, 0.1).astype(np.float32)
    prob[2, 50:53, 50:53] = 0.8  # 9 stray pixels on a finding-free image
    # Every threshold finds the same masks; 10 px and more drop the stray pixels, and leave the findings (400 px)
    chosen = choose_postprocess(prob, target, 64)
    assert chosen == PostProcess(0.3, 10)
    best = dice_per_image(chosen.apply(prob), target).mean()
    assert best == 1.0 and dice_per_image(PostProcess(0.5, 0).apply(prob), target).mean() == 0.75
    # No stray pixels: every candidate up to 160 px ties at 1, so the first candidate wins
    prob[2] = 0.1
    assert choose_postprocess(prob, target, 64) == PostProcess(0.3, 0)


class _Brightness(torch.nn.Module):
    """A segmenter whose probability is the pixel's brightness."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logit(x.clamp(1e-4, 1 - 1e-4))


def _seg_splits() -> Splits:
    def part(n: int, seed: int) -> SampleSet:
        rng = np.random.default_rng(seed)
        masks = np.zeros((n, 64, 64), bool)
        images = np.full((n, 64, 64), 0.1, np.float32)
        for i in range(n):
            if i % 2 == 0:
                masks[i, 10:30, 10:30] = True
                images[i, 10:30, 10:30] = 0.65
            else:
                images[i, :2, :3] = 0.9  # 6 bright pixels on a finding-free image
        images += rng.random(images.shape, dtype=np.float32) * 0.01
        return _sample_set(images, masks.reshape(n, -1).any(axis=1)[:, None], masks)

    return _splits(part(4, 0), part(6, 1), part(8, 2))


def test_segmentation_predicts_test_masks_with_the_post_processing_chosen_on_val_and_reports_secondary_numbers():
    task = get_task("phantom_seg")
    splits = _seg_splits()
    predictions = task.predict(_Brightness(), splits, device="cpu")
    assert set(predictions) == {"test_mask", "postprocess"}
    assert predictions["test_mask"].dtype == bool
    assert predictions["postprocess"].tolist() == [0.3, 10.0]  # the bright corners dropped, the findings kept
    scores = task.case_metric(predictions, splits)
    assert scores.metric.value() == 1.0
    assert scores.secondary == {"dice_positive": 1.0, "fp_rate_empty": 0.0}
    # At the old fixed 0.5 and no area the corners stay: every finding-free image scores 0
    fixed = {"test_mask": _Brightness()(torch.from_numpy(splits.test.images)).numpy() > 0}
    scores = task.case_metric(fixed, splits)
    assert scores.metric.value() == 0.5 and scores.secondary == {"dice_positive": 1.0, "fp_rate_empty": 1.0}


def test_segmentation_secondary_numbers_are_omitted_where_undefined():
    task = get_task("phantom_seg")
    splits = _seg_splits()
    full = [i for i in range(8) if i % 2 == 0]
    test = SampleSet(*(a[full] for a in (splits.test.images, splits.test.labels, splits.test.masks,
                                         splits.test.patient_ids, splits.test.sample_ids)))
    scores = task.case_metric({"test_mask": test.masks}, _splits(splits.train, splits.val, test))
    assert scores.secondary == {"dice_positive": 1.0}


def test_the_recipe_names_the_post_processing():
    recipe = get_task("phantom_seg").recipe()
    assert "threshold" not in recipe
    assert recipe["postprocess"]["thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert recipe["postprocess"]["min_areas"] == [0, 10, 20, 40, 80, 160]


# --- classification --------------------------------------------------------------------------------------------

def test_a_single_label_task_scores_the_macro_f1_of_its_two_classes():
    task = PneumoniaKermany()
    val = _sample_set(np.zeros((4, 2, 2)), [0, 0, 1, 1])
    test = _sample_set(np.zeros((8, 2, 2)), [1, 1, 1, 1, 1, 1, 0, 0])
    predictions = {"val_prob": np.array([[0.1], [0.2], [0.6], [0.7]], np.float32),
                   "test_prob": np.array([[0.9], [0.9], [0.9], [0.9], [0.9], [0.9], [0.9], [0.1]], np.float32)}
    scores = task.case_metric(predictions, _splits(val, val, test))
    # threshold 0.6: pneumonia TP 6, FP 1, FN 0 -> 12/13; no pneumonia TP 1, FP 0, FN 1 -> 2/3
    assert scores.per_label == pytest.approx({"pneumonia": 12 / 13, "no pneumonia": 2 / 3})
    assert scores.metric.value() == pytest.approx((12 / 13 + 2 / 3) / 2)
    assert scores.secondary == {"auroc": pytest.approx(0.75)}  # one negative outranks its pair in 6 of 12 pairs
    assert "two classes" in task.recipe()["metric"] and "two classes" in task.meta.description


def test_a_multi_label_task_keeps_the_mean_of_positive_class_f1_and_auroc_skips_one_class_labels():
    task = get_task("phantom_cls")
    n_labels = len(task.meta.labels)
    labels = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 1, 1]])[:, :n_labels]
    prob = np.where(labels, 0.8, 0.2).astype(np.float32)
    prob[0, 0] = 0.1  # one missed cardiomegaly
    split = _sample_set(np.zeros((4, 2, 2)), labels)
    scores = task.case_metric({"val_prob": np.where(labels, 0.8, 0.2), "test_prob": prob}, _splits(split, split, split))
    assert list(scores.per_label) == task.meta.labels
    assert scores.per_label[task.meta.labels[0]] == pytest.approx(2 / 3)
    assert scores.metric.value() == pytest.approx(np.mean(list(scores.per_label.values())))
    # the third label is positive everywhere: AUROC over the other three (cardiomegaly 0.5, the others 1)
    assert scores.secondary == {"auroc": pytest.approx((0.5 + 1 + 1) / 3)}


# --- scoring and identity --------------------------------------------------------------------------------------

def test_seed_scores_carry_the_secondary_numbers():
    task = get_task("phantom_seg")
    splits = _seg_splits()
    arm = ArmPredictions(generator_class("oracle").meta, "r", 1.0, 4,
                         [(s, f"cell{s}", task.predict(_Brightness(), splits, device="cpu")) for s in (0, 1)])
    result = _score_arm(task, splits, arm).result
    assert [s.secondary for s in result.seeds] == [{"dice_positive": 1.0, "fp_rate_empty": 0.0}] * 2
    assert result.seeds[0].model_dump()["secondary"] == {"dice_positive": 1.0, "fp_rate_empty": 0.0}


@pytest.mark.parametrize("name", ["phantom_cls", "phantom_seg"])
def test_a_new_task_version_keeps_the_data_identity(name, monkeypatch):
    """The fingerprint (the data's cache key, hence every generator fit's) reads data_version, not meta.version:
    a recipe change bumps meta.version and changes the downstream cells through recipe() alone."""
    task = get_task(name)
    assert task.meta.version == "2" and task.data_version == "1"
    before = task.fingerprint(None)
    assert before["version"] == "1"  # the key version 1 had: cached fits stay valid
    monkeypatch.setattr(type(task), "meta", task.meta.model_copy(update={"version": "99"}))
    assert task.fingerprint(None) == before
