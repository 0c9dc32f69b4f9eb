"""The phantom renderer: shapes, determinism, shared anatomy, and that each finding shows where it should."""

import pickle
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from cxrbench.tasks.embedded.phantom import (
    FINDINGS,
    Anatomy,
    PhantomConfig,
    Population,
    draw_anatomy,
    lung_masks,
    render_conditions,
    render_study,
    simulate_population,
)

NONE = dict.fromkeys(FINDINGS, False)
PREVALENCE = {"cardiomegaly": 0.3, "effusion": 0.3, "consolidation": 0.3, "pneumothorax": 0.3}
STILL = PhantomConfig(size=64, jitter_shift=0.0, jitter_rotation=0.0, jitter_scale=0.0, exposure_jitter=0.0)
CLEAN = replace(STILL, noise_sigma=0.0)


def only(name: str) -> dict:
    return {**NONE, name: True}


def anatomies(n: int, seed: int = 0) -> list[Anatomy]:
    return [draw_anatomy(np.random.default_rng([seed, i])) for i in range(n)]


def paired(anatomy: Anatomy, present: dict, config: PhantomConfig, seed: int, mask=None):
    """The same study with and without `present`: equal generators, so only the findings differ."""
    base, _ = render_study(anatomy, NONE, np.random.default_rng(seed), config)
    with_, m = render_study(anatomy, present, np.random.default_rng(seed), config, mask)
    return base, with_, m


# ---- shapes, ranges, ids --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 50, 64, 128])
def test_render_study_shapes_dtypes_range(size):
    config = PhantomConfig(size=size)
    rng = np.random.default_rng(1)
    for present in (NONE, dict.fromkeys(FINDINGS, True)):
        img, mask = render_study(draw_anatomy(rng), present, rng, config)
        assert img.shape == (size, size) and img.dtype == np.float32
        assert mask.shape == (size, size) and mask.dtype == bool
        assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 1.0
        assert img.std() > 0.1                              # a radiograph, not a flat field
    assert mask.any()                                       # pneumothorax requested in the last study


def test_population_shapes_ids_and_labels():
    pop = simulate_population(12, prevalence=PREVALENCE, studies_per_patient=(1, 3), config=PhantomConfig(), seed=4)
    n = len(pop.images)
    assert isinstance(pop, Population) and 12 <= n <= 36
    assert pop.images.shape == (n, 64, 64) and pop.images.dtype == np.float32
    assert pop.images.min() >= 0.0 and pop.images.max() <= 1.0
    assert pop.labels.shape == (n, len(FINDINGS)) and pop.labels.dtype == np.int8
    assert set(np.unique(pop.labels)) <= {0, 1}
    assert pop.masks.shape == (n, 64, 64) and pop.masks.dtype == bool
    assert pop.patient_ids.shape == pop.study_ids.shape == (n,)
    assert len(set(pop.study_ids.tolist())) == n
    assert set(pop.patient_ids.tolist()) == {f"P{k:05d}" for k in range(12)}
    for pid, sid in zip(pop.patient_ids, pop.study_ids):
        assert sid.startswith(pid + "_S")
    # the mask is non-empty exactly when the pneumothorax label is set
    np.testing.assert_array_equal(pop.masks.any(axis=(1, 2)), pop.labels[:, FINDINGS.index("pneumothorax")] == 1)


def test_empty_population():
    pop = simulate_population(0, prevalence=PREVALENCE, studies_per_patient=(1, 2), config=PhantomConfig(), seed=0)
    assert pop.images.shape == (0, 64, 64) and pop.labels.shape == (0, 4) and pop.masks.shape == (0, 64, 64)


# ---- determinism ------------------------------------------------------------------------------------


def test_population_deterministic_and_seed_dependent():
    kwargs = dict(prevalence=PREVALENCE, studies_per_patient=(1, 3), config=PhantomConfig())
    a = simulate_population(10, seed=7, **kwargs)
    b = simulate_population(10, seed=7, **kwargs)
    c = simulate_population(10, seed=8, **kwargs)
    for field in ("images", "labels", "masks", "patient_ids", "study_ids"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.images.tobytes() == b.images.tobytes()
    n = min(len(a.images), len(c.images))
    assert not np.array_equal(a.images[:n], c.images[:n])


@pytest.mark.parametrize("size", [64, 50])
def test_patient_k_unchanged_when_population_grows(size):
    kwargs = dict(prevalence=PREVALENCE, studies_per_patient=(1, 3), config=PhantomConfig(size=size), seed=3)
    small = simulate_population(9, **kwargs)
    large = simulate_population(30, **kwargs)
    n = len(small.images)
    assert large.images[:n].tobytes() == small.images.tobytes()
    np.testing.assert_array_equal(large.masks[:n], small.masks)
    np.testing.assert_array_equal(large.labels[:n], small.labels)
    np.testing.assert_array_equal(large.study_ids[:n], small.study_ids)


def test_render_study_deterministic_and_picklable():
    anatomy = draw_anatomy(np.random.default_rng(5))
    a, ma = render_study(anatomy, dict.fromkeys(FINDINGS, True), np.random.default_rng(9), PhantomConfig())
    copy = pickle.loads(pickle.dumps(anatomy))
    b, mb = render_study(copy, dict.fromkeys(FINDINGS, True), np.random.default_rng(9), PhantomConfig())
    assert a.tobytes() == b.tobytes() and np.array_equal(ma, mb)
    c, _ = render_study(anatomy, dict.fromkeys(FINDINGS, True), np.random.default_rng(10), PhantomConfig())
    assert not np.array_equal(a, c)


def test_no_global_random_state_used():
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    simulate_population(3, prevalence=PREVALENCE, studies_per_patient=(1, 2), config=PhantomConfig(), seed=1)
    render_conditions(np.ones((2, 4), np.int8), None, config=PhantomConfig(), seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# ---- shared anatomy -----------------------------------------------------------------------------------


def _same_and_other(config: PhantomConfig) -> tuple[list, list]:
    pop = simulate_population(8, prevalence={}, studies_per_patient=(3, 3), config=config, seed=2)
    imgs = pop.images.reshape(8, 3, 64, 64)
    same = [np.abs(imgs[k, i] - imgs[k, j]).mean() for k in range(8) for i, j in ((0, 1), (0, 2), (1, 2))]
    other = [np.abs(imgs[k, 0] - imgs[(k + 1) % 8, 0]).mean() for k in range(8)]
    return same, other


def test_studies_of_a_patient_share_anatomy():
    # without positioning jitter a patient's studies differ only by noise
    same, other = _same_and_other(STILL)
    assert max(same) < 0.03 < min(other)
    # with the default jitter they still resemble each other more than another patient
    same, other = _same_and_other(PhantomConfig())
    assert np.mean(same) < 0.7 * np.mean(other)
    assert np.median(same) < np.median(other)


def test_lung_masks_fixed_per_patient_and_varied_between():
    config = PhantomConfig()
    masks = [lung_masks(a, config) for a in anatomies(6)]
    again = lung_masks(anatomies(1)[0], config)
    np.testing.assert_array_equal(masks[0], again)
    for m in masks:
        assert m.dtype == bool and 0.15 < m.mean() < 0.45
        assert m[:, :32].sum() > 0.3 * m.sum() and m[:, 32:].sum() > 0.3 * m.sum()     # two lungs
    ious = [(a & b).sum() / (a | b).sum() for i, a in enumerate(masks) for b in masks[i + 1:]]
    assert max(ious) < 0.97


def test_heart_bulges_to_the_image_right_and_lungs_are_dark():
    config = STILL
    for anatomy in anatomies(5):
        img, _ = render_study(anatomy, NONE, np.random.default_rng(0), config)
        lungs = lung_masks(anatomy, config)
        soft = ~ndimage.binary_dilation(lungs, iterations=2) & (img > 0.15)
        assert img[lungs].mean() < img[soft].mean() - 0.15           # air is dark against the body
        assert img[:3, :3].mean() < 0.1                               # background outside the body
        assert img[lungs].mean() < img[56:, 24:40].mean() - 0.3       # the abdomen is dense
        # the heart pushes the image-right lung's lower medial border further from the midline
        rows = np.flatnonzero(lungs.any(axis=1))
        gaps_left, gaps_right = [], []
        for r in range(rows[0] + int(0.6 * (rows[-1] - rows[0])), rows[0] + int(0.85 * (rows[-1] - rows[0]))):
            left, right = np.flatnonzero(lungs[r, :32]), np.flatnonzero(lungs[r, 32:])
            if left.size and right.size:
                gaps_left.append(32 - left.max())
                gaps_right.append(right.min())
        assert np.mean(gaps_right) > np.mean(gaps_left) + 1


# ---- findings ----------------------------------------------------------------------------------------


def test_cardiomegaly_enlarges_the_heart():
    config = CLEAN
    for i, anatomy in enumerate(anatomies(12, seed=1)):
        base, big, mask = paired(anatomy, only("cardiomegaly"), config, seed=i)
        assert not mask.any()
        lungs = lung_masks(anatomy, config)
        # bright pixels next to the heart replace lung: more bright pixels in the heart region ...
        region = np.zeros_like(lungs)
        region[30:52, 20:56] = True
        assert (big[region] > 0.5).sum() > (base[region] > 0.5).sum() + 10
        assert (big - base)[region].sum() > 1.0
        # ... and a wider heart shadow across the rows where it meets the lungs
        def width(im):
            return (im[38:48, 8:56] > 0.5).sum(axis=1).mean()
        assert width(big) > width(base)
        # nothing changes far from the heart
        assert np.abs(big - base)[:16].max() < 1e-6


def test_effusion_brightens_the_lung_bases():
    config = CLEAN
    for i, anatomy in enumerate(anatomies(12, seed=2)):
        base, wet, _ = paired(anatomy, only("effusion"), config, seed=i)
        lungs = lung_masks(anatomy, config)
        rows = np.flatnonzero(lungs.any(axis=1))
        lower = lungs.copy()
        lower[: rows[0] + int(0.6 * (rows[-1] - rows[0]))] = False
        upper = lungs.copy()
        upper[rows[0] + int(0.4 * (rows[-1] - rows[0])):] = False
        diff = wet - base
        assert diff[lower].sum() > 0.5 and diff.max() > 0.1
        assert np.abs(diff[upper]).sum() < 0.1 * diff[lower].sum()
        assert diff.min() > -1e-6                                   # fluid only adds density
        bright = diff > 0.05                                        # the fluid sits low in the lung
        assert np.flatnonzero(bright.any(axis=1)).mean() > rows[0] + 0.6 * (rows[-1] - rows[0])


def test_consolidation_brightens_a_patch_of_lung():
    config = CLEAN
    for i, anatomy in enumerate(anatomies(12, seed=3)):
        base, sick, _ = paired(anatomy, only("consolidation"), config, seed=i)
        lungs = ndimage.binary_dilation(lung_masks(anatomy, config), iterations=2)
        diff = sick - base
        assert diff.min() > -1e-6
        assert diff[lungs].sum() > 2.0 and diff.max() > 0.1
        assert diff[~lungs].sum() < 0.1 * diff[lungs].sum()
        # a patch, not the whole lung
        assert (diff > 0.05).sum() < 0.5 * lungs.sum()


def test_pneumothorax_is_dark_unmarked_air_inside_the_hemithorax():
    config = CLEAN
    inside, darker, var_with, var_without = [], [], [], []
    for i, anatomy in enumerate(anatomies(16, seed=4)):
        base, ptx, mask = paired(anatomy, only("pneumothorax"), config, seed=i)
        assert mask.any() and mask.dtype == bool
        hemithorax = ndimage.binary_dilation(lung_masks(anatomy, config), iterations=1)
        inside.append((mask & hemithorax).sum() / mask.sum())
        darker.append(ptx[mask].mean() < base[mask].mean() - 0.02)
        core = ndimage.binary_erosion(mask)
        if core.sum() >= 8:
            var_with.append(ptx[core].var())
            var_without.append(base[core].var())
        # on one side only
        cols = np.flatnonzero(mask.any(axis=0))
        assert cols.max() < 34 or cols.min() > 30
    assert min(inside) > 0.9
    assert all(darker)
    assert len(var_with) >= 8 and np.mean(var_with) < 0.8 * np.mean(var_without)


def test_pneumothorax_has_a_bright_pleural_line():
    config = replace(CLEAN, blur_sigma=0.0)
    brighter = []
    for i, anatomy in enumerate(anatomies(10, seed=5)):
        base, ptx, mask = paired(anatomy, only("pneumothorax"), config, seed=i)
        border = ndimage.binary_dilation(mask) & ~mask & lung_masks(anatomy, config)
        if border.sum() >= 4:
            brighter.append((ptx - base)[border].mean())
    assert len(brighter) >= 6 and np.mean(brighter) > 0.03 and min(brighter) > 0


def test_given_pneumothorax_mask_is_honoured_exactly():
    config = replace(CLEAN, blur_sigma=0.0)
    anatomy = draw_anatomy(np.random.default_rng(11))
    mask = np.zeros((64, 64), bool)
    mask[14:22, 12:18] = True                                  # an apical box in the image-left lung
    for present in (NONE, only("pneumothorax")):                 # the label is ignored when a mask is given
        base, img, out = paired(anatomy, present, config, seed=3, mask=mask)
        np.testing.assert_array_equal(out, mask)
        assert out is not mask
        changed = np.abs(img - base) > 1e-6
        assert not (changed & ~ndimage.binary_dilation(mask)).any()
        assert img[mask].mean() < base[mask].mean() - 0.02
    # an empty mask means no pneumothorax, whatever the label says
    base, img, out = paired(anatomy, only("pneumothorax"), config, seed=3, mask=np.zeros((64, 64), bool))
    assert not out.any() and np.array_equal(img, base)


def test_no_pneumothorax_gives_an_empty_mask():
    rng = np.random.default_rng(0)
    for present in (NONE, {**dict.fromkeys(FINDINGS, True), "pneumothorax": False}):
        _, mask = render_study(draw_anatomy(rng), present, rng, PhantomConfig())
        assert mask.shape == (64, 64) and not mask.any()


def test_severity_varies_between_studies():
    config = CLEAN
    anatomy = draw_anatomy(np.random.default_rng(0))
    areas = [render_study(anatomy, only("pneumothorax"), np.random.default_rng(s), config)[1].sum() for s in range(12)]
    assert max(areas) > 1.5 * min(areas)
    gains = []
    for s in range(12):
        base, wet, _ = paired(anatomy, only("effusion"), config, seed=s)
        gains.append((wet - base).sum())
    assert max(gains) > 1.5 * min(gains)


# ---- prevalence ------------------------------------------------------------------------------------------


def test_prevalence_is_respected():
    prevalence = {"cardiomegaly": 0.1, "effusion": 0.3, "consolidation": 0.5, "pneumothorax": 0.7}
    pop = simulate_population(250, prevalence=prevalence, studies_per_patient=(2, 2), config=PhantomConfig(size=32),
                              seed=0)
    assert len(pop.images) == 500
    observed = pop.labels.mean(axis=0)
    np.testing.assert_allclose(observed, [prevalence[f] for f in FINDINGS], atol=0.07)
    # independence: no strong correlation between findings
    corr = np.corrcoef(pop.labels.T.astype(float))
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.15


def test_missing_prevalence_means_absent_and_studies_per_patient_range():
    pop = simulate_population(40, prevalence={"effusion": 1.0}, studies_per_patient=(1, 3),
                              config=PhantomConfig(size=32), seed=1)
    np.testing.assert_array_equal(pop.labels.sum(axis=0), [0, len(pop.images), 0, 0])
    counts = np.unique(pop.patient_ids, return_counts=True)[1]
    assert counts.min() >= 1 and counts.max() <= 3 and len(set(counts.tolist())) == 3


# ---- render_conditions -----------------------------------------------------------------------------------


def test_render_conditions_deterministic_new_patients_row_independent():
    config = PhantomConfig()
    labels = np.random.default_rng(0).integers(0, 2, (12, 4)).astype(np.int8)
    a = render_conditions(labels, None, config=config, seed=5)
    b = render_conditions(labels, None, config=config, seed=5)
    c = render_conditions(labels, None, config=config, seed=6)
    assert a.shape == (12, 64, 64) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, c)
    assert a[:5].tobytes() == render_conditions(labels[:5], None, config=config, seed=5).tobytes()
    # each row is a different patient, and none is a population patient of the same seed
    assert min(np.abs(a[i] - a[j]).mean() for i in range(12) for j in range(i + 1, 12)) > 0.01
    pop = simulate_population(12, prevalence={}, studies_per_patient=(1, 1), config=config, seed=5)
    assert min(np.abs(a[i] - pop.images[i]).mean() for i in range(12)) > 0.01


def test_render_conditions_honours_labels():
    config = CLEAN
    n = 8
    none = np.zeros((n, 4), np.int8)
    base = render_conditions(none, None, config=config, seed=1)
    for name in ("cardiomegaly", "effusion", "consolidation", "pneumothorax"):
        labels = none.copy()
        labels[:, FINDINGS.index(name)] = 1
        sick = render_conditions(labels, None, config=config, seed=1)
        diff = (sick - base).reshape(n, -1)
        if name == "pneumothorax":
            assert (diff.min(axis=1) < -0.05).all()
        else:
            assert (diff.sum(axis=1) > 1.0).all()


def test_render_conditions_honours_masks():
    config = replace(CLEAN, blur_sigma=0.0)
    n = 4
    labels = np.zeros((n, 4), np.int8)
    labels[:, FINDINGS.index("pneumothorax")] = 1                  # ignored: the masks decide
    masks = np.zeros((n, 64, 64), bool)
    masks[0, 12:20, 10:16] = True
    masks[2, 24:36, 44:48] = True
    empty = render_conditions(labels, np.zeros_like(masks), config=config, seed=2)
    drawn = render_conditions(labels, masks, config=config, seed=2)
    plain = render_conditions(np.zeros_like(labels), None, config=config, seed=2)
    np.testing.assert_array_equal(empty, plain)
    for i in range(n):
        if masks[i].any():
            assert drawn[i][masks[i]].mean() < empty[i][masks[i]].mean() - 0.02
            outside = ~ndimage.binary_dilation(masks[i])
            np.testing.assert_array_equal(drawn[i][outside], empty[i][outside])
        else:
            np.testing.assert_array_equal(drawn[i], empty[i])


# ---- validation ------------------------------------------------------------------------------------------


def test_bad_inputs_raise():
    anatomy = draw_anatomy(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"unknown findings \['fracture'\]"):
        render_study(anatomy, {"fracture": True}, rng, PhantomConfig())
    with pytest.raises(ValueError, match=r"pneumothorax_mask has shape \(32, 32\), expected \(64, 64\)"):
        render_study(anatomy, NONE, rng, PhantomConfig(), np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match=r"unknown findings in prevalence: \['fracture'\]"):
        simulate_population(2, prevalence={"fracture": 0.5}, studies_per_patient=(1, 2), config=PhantomConfig(), seed=0)
    with pytest.raises(ValueError, match=r"studies_per_patient must be \(lo, hi\) with 1 <= lo <= hi, got \(3, 2\)"):
        simulate_population(2, prevalence=PREVALENCE, studies_per_patient=(3, 2), config=PhantomConfig(), seed=0)
    with pytest.raises(ValueError, match=r"labels must have shape \(N, 4\), got \(2, 3\)"):
        render_conditions(np.zeros((2, 3)), None, config=PhantomConfig(), seed=0)
    with pytest.raises(ValueError, match=r"masks must have shape \(2, 64, 64\), got \(2, 32, 32\)"):
        render_conditions(np.zeros((2, 4)), np.zeros((2, 32, 32), bool), config=PhantomConfig(), seed=0)
    with pytest.raises(ValueError, match="size must be an integer >= 16, got 8"):
        PhantomConfig(size=8)
    with pytest.raises(ValueError, match=r"cardiomegaly_scale must be an interval .*got \(1.5, 1.2\)"):
        PhantomConfig(cardiomegaly_scale=(1.5, 1.2))


def test_config_is_hashable_and_has_a_plain_dict():
    config = PhantomConfig(size=128)
    assert hash(config) == hash(PhantomConfig(size=128))
    assert config.__dict__["size"] == 128 and "noise_sigma" in config.__dict__
