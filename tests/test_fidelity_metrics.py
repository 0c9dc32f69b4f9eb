"""Fidelity metrics on feature arrays: agreement with torchmetrics and `prdc` on the same features, sanity properties,
the bootstrap intervals, per-group results, and one clear error per bad input."""

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from pydantic import ValidationError
from scipy import linalg
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

from cxrbench.errors import DataError
from cxrbench.fidelity import metrics
from cxrbench.fidelity.metrics import FidelityResult, FidelitySettings, GroupFidelity, fidelity, fidelity_by_group

RELATIVE = 1e-4
FAST = FidelitySettings(n_boot=100)


def _sets(n_real=300, n_synthetic=300, dim=32, shift=0.3, scale=1.2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_real, dim)), rng.normal(size=(n_synthetic, dim)) * scale + shift


class _Identity(torch.nn.Identity):
    """A torchmetrics feature extractor that hands the features through: the metric then sees our arrays."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


def _torchmetrics(metric, real, synthetic):
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(synthetic), real=False)
    return metric.compute()


def _relative(ours, reference):
    return abs(ours - reference) / abs(reference)


@pytest.mark.parametrize("shape", [(300, 300, 32), (250, 400, 16), (500, 200, 64)])
def test_fid_agrees_with_torchmetrics_and_scipy(shape):
    real, synthetic = _sets(*shape)
    reference = _torchmetrics(FrechetInceptionDistance(feature=_Identity(shape[2])), real, synthetic).item()
    sqrtm = linalg.sqrtm(np.cov(real, rowvar=False) @ np.cov(synthetic, rowvar=False)).real
    by_sqrtm = (np.sum((real.mean(0) - synthetic.mean(0)) ** 2) + np.trace(np.cov(real, rowvar=False))
                + np.trace(np.cov(synthetic, rowvar=False)) - 2 * np.trace(sqrtm))
    ours = metrics.fid(real, synthetic)
    assert _relative(ours, reference) < RELATIVE
    assert _relative(ours, by_sqrtm) < RELATIVE


@pytest.mark.parametrize("seed", range(5))
def test_fid_with_fewer_images_than_features_does_not_depend_on_summation_order(seed):
    """Another CPU's kernels sum in another order; reversing the images does the same here. With 40 synthetic images
    of 64 features, 24 eigenvalues are zero up to rounding noise, whose square roots once moved FID by ~1e-8: the
    validator on CI could not recompute a committed entry's FID. The agreement asked for is the validator's."""
    real, synthetic = _sets(300, 40, 64, shift=0.0, scale=1.0, seed=seed)
    forward, backward = metrics.fid(real, synthetic), metrics.fid(real[::-1].copy(), synthetic[::-1].copy())
    assert _relative(backward, forward) < 1e-9, (forward, backward)


@pytest.mark.parametrize("shape", [(300, 300, 32), (200, 200, 64)])
def test_kid_on_whole_sets_agrees_with_torchmetrics(shape):
    """Subsets as large as both sets are the sets themselves: torchmetrics' KID is then deterministic."""
    real, synthetic = _sets(*shape)
    kid = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=2, subset_size=shape[0])
    reference = _torchmetrics(kid, real, synthetic)[0].item()
    assert _relative(metrics.kid(real, synthetic, subsets=2, subset_size=shape[0]), reference) < RELATIVE


def test_kid_subsets_agree_with_torchmetrics_mmd_on_the_same_subsets():
    real, synthetic = _sets(400, 300, 16)
    settings = FidelitySettings(kid_subsets=20, kid_subset_size=100, seed=3)
    real_rows, synthetic_rows = metrics._kid_subsets(400, 300, settings, np.random.default_rng(settings.seed))
    reference = np.mean([poly_mmd(torch.from_numpy(real[r > 0]), torch.from_numpy(synthetic[s > 0])).item()
                         for r, s in zip(real_rows, synthetic_rows)])
    ours = metrics.kid(real, synthetic, subsets=20, subset_size=100, seed=3)
    assert real_rows.sum(axis=1).tolist() == [100] * 20
    assert _relative(ours, reference) < RELATIVE


@pytest.mark.parametrize("shape, k", [((300, 300, 32), 5), ((250, 400, 16), 5), ((200, 150, 64), 3)])
def test_prdc_agrees_with_the_prdc_package(shape, k, capsys):
    real, synthetic = _sets(*shape)
    reference = compute_prdc(real, synthetic, nearest_k=k)
    ours = metrics.prdc(real, synthetic, k=k)
    for name in ("precision", "recall", "density", "coverage"):
        assert _relative(ours[name], reference[name]) < RELATIVE, name


def test_identical_sets_give_fid_zero_and_full_precision_recall_coverage():
    real, _ = _sets()
    assert abs(metrics.fid(real, real.copy())) < 1e-8
    scores = metrics.prdc(real, real.copy())
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0


def test_fid_and_kid_grow_with_the_shift_and_kid_is_near_zero_without_one():
    fids, kids = [], []
    for shift in (0.0, 0.2, 0.5, 1.0):
        real, synthetic = _sets(shift=shift, scale=1.0)
        fids.append(metrics.fid(real, synthetic))
        kids.append(metrics.kid(real, synthetic))
    assert fids == sorted(fids) and kids == sorted(kids)
    assert abs(kids[0]) < 0.1 * kids[1]


def test_precision_and_recall_fall_when_the_synthetic_set_leaves_the_real_one():
    near = metrics.prdc(*_sets(shift=0.0, scale=1.0))
    far = metrics.prdc(*_sets(shift=1.0, scale=1.0))
    assert all(far[name] < near[name] for name in ("precision", "recall", "density", "coverage"))


def test_intervals_hold_the_estimate_and_are_reproducible():
    real, synthetic = _sets(100, 100, 16)
    result = fidelity(real, synthetic, FAST)
    for name in ("fid", "kid", "precision", "recall", "density", "coverage"):
        estimate = getattr(result, name)
        assert estimate.ci_low <= estimate.value <= estimate.ci_high, name
    assert result.fid.bias > 0 and result.coverage.bias < 0  # resampling: fewer distinct images
    assert result.fid.value == pytest.approx(metrics.fid(real, synthetic))
    assert result.kid.value == pytest.approx(metrics.kid(real, synthetic))
    assert fidelity(real, synthetic, FAST) == result
    assert fidelity(real, synthetic, FAST.model_copy(update={"seed": 1})).fid != result.fid


def test_intervals_stay_inside_the_metrics_ranges():
    real, _ = _sets(60, 60, 8)
    result = fidelity(real, real.copy(), FAST)
    assert result.fid.ci_low >= 0 and result.precision.ci_high <= 1 and result.coverage.ci_high <= 1


def test_a_result_round_trips_through_json():
    result = fidelity(*_sets(40, 40, 8), FAST)
    assert FidelityResult.model_validate_json(result.model_dump_json()) == result


def test_groups_get_their_own_results_and_small_groups_are_recorded_not_computed():
    real, synthetic = _sets(120, 100, 8)
    real_label = np.arange(120) % 3 == 0
    synthetic_label = np.arange(100) < 4
    groups = fidelity_by_group(real, synthetic, {"effusion": real_label, "all": np.ones(120, bool)},
                               {"effusion": synthetic_label, "all": np.ones(100, bool)}, FAST)
    assert groups["effusion"] == GroupFidelity(n_real=40, n_synthetic=4, result=None,
                                               not_computed="n < k + 1 = 6 (real 40, synthetic 4)")
    assert groups["all"].result == fidelity(real, synthetic, FAST)


def test_overlapping_groups_are_allowed():
    real, synthetic = _sets(60, 60, 8)
    first, second = np.arange(60) < 40, np.arange(60) >= 20
    groups = fidelity_by_group(real, synthetic, {"a": first, "b": second}, {"a": first, "b": second}, FAST)
    assert groups["a"].result.n_real == groups["b"].result.n_real == 40


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("real, synthetic, message", [
    (np.zeros(10), np.zeros((10, 4)), "real features: expected a 2-D array (images × features) with at least one "
                                      "of each, got shape (10,)"),
    (np.zeros((10, 4)), np.zeros((0, 4)), "synthetic features: expected a 2-D array (images × features) with at "
                                          "least one of each, got shape (0, 4)"),
    (np.zeros((10, 4)), np.array([["a"] * 4] * 10), "synthetic features: expected numbers, got dtype <U1"),
    (np.where(np.arange(40).reshape(10, 4) == 13, np.nan, 1.0), np.zeros((10, 4)),
     "real features: 1 row(s) hold NaN or infinite values (first: row 3)"),
    (np.zeros((10, 4)), np.full((10, 4), np.inf), "synthetic features: 10 row(s) hold NaN or infinite values "
                                                  "(first: row 0)"),
    (np.zeros((10, 4)), np.zeros((10, 5)), "synthetic features: 5 features per image, the real ones have 4; both "
                                           "sets must come from the same extractor"),
    (np.zeros((5, 4)), np.zeros((10, 4)), "real features: 5 image(s); the metrics need at least 6 (k + 1 for k "
                                          "nearest neighbours)"),
])
def test_bad_feature_arrays_are_refused_in_one_line(real, synthetic, message):
    with pytest.raises(DataError) as caught:
        fidelity(real, synthetic, FAST)
    assert str(caught.value) == message


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("metric", ["fid", "kid"])
def test_a_single_image_is_refused_by_fid_and_kid(metric):
    with pytest.raises(DataError) as caught:
        getattr(metrics, metric)(np.zeros((5, 4)), np.zeros((1, 4)))
    assert str(caught.value) == ("synthetic features: 1 image(s); the metrics need at least 2 (a covariance and a "
                                 "pair of images)")


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("real_groups, synthetic_groups, message", [
    ({"a": np.ones(20, bool)}, {"b": np.ones(20, bool)},
     "groups: ['a', 'b'] are named for one set only; name every group for both sets (an empty mask for a group "
     "without images)"),
    ({"a": np.ones(19, bool)}, {"a": np.ones(20, bool)},
     "real groups: a: expected a boolean mask of 20 images, got dtype bool shape (19,)"),
    ({"a": np.ones(20, bool)}, {"a": np.arange(20)},
     "synthetic groups: a: expected a boolean mask of 20 images, got dtype int64 shape (20,)"),
])
def test_bad_group_masks_are_refused_in_one_line(real_groups, synthetic_groups, message):
    with pytest.raises(DataError) as caught:
        fidelity_by_group(*_sets(20, 20, 4), real_groups, synthetic_groups, FAST)
    assert str(caught.value) == message


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("change, field", [
    (lambda data: data.update(extra=1), "extra"),
    (lambda data: data["fid"].update(p=0.1), "fid.p"),
    (lambda data: data["settings"].update(k=0), "settings.k"),
])
def test_a_result_with_an_unknown_or_bad_field_is_refused(change, field):
    data = fidelity(*_sets(20, 20, 4), FAST).model_dump()
    change(data)
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        FidelityResult.model_validate(data)


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("result, reason", [(None, None), ("result", "too small")])
def test_a_group_needs_a_result_or_a_reason_not_both(result, reason):
    payload = fidelity(*_sets(20, 20, 4), FAST) if result else None
    with pytest.raises(ValidationError, match="either a result or the reason"):
        GroupFidelity(n_real=20, n_synthetic=20, result=payload, not_computed=reason)
