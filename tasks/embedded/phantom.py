"""Procedural phantom chest radiographs with labelled findings: the embedded suite's true data generator.

A phantom is a frontal (PA) chest radiograph-like image: single channel, float32, values in [0, 1],
bright = dense (bone, fluid, soft tissue), dark = air. The image's left is the patient's right, so the
heart bulges to the image's right and the right hemidiaphragm (image left) sits a little higher.

How an image is made
--------------------
* ``draw_anatomy`` draws one patient: placement (zoom, offset, tilt), body outline, lung fields, heart,
  mediastinum, aortic knob, trachea, spine, posterior and anterior ribs, clavicles, gastric bubble,
  tissue densities, and a lung-markings texture (a branching vessel tree from each hilum plus faint
  nodular noise; taken from a fixed, seeded bank of 128 trees, mirrored or not, with its own gain).
  Every study of the patient reuses it.
* ``render_study`` draws a small per-study jitter (shift, rotation, scale, exposure) and the findings'
  severities, evaluates every structure analytically in an axis-aligned frame (so most terms are
  row or column vectors), adds the findings, rotates the result into the image frame with one
  bilinear warp, draws the pneumothorax there, maps the summed attenuation ``A`` to brightness with
  ``image = 1 - exp(-1.8 A)``, adds signal-dependent ("quantum-like") noise and blurs.
  Internally studies are rendered in vectorised batches; a study's pixels never depend on the rest of
  its batch, so the population helpers give bitwise the same images as ``render_study`` study by study.

All geometry lives in normalised patient coordinates (image width = 1, origin at the image centre,
y pointing down), so any ``size`` works; the blur scales with ``size``.

Findings (each independently present or absent; severities drawn per study from ``PhantomConfig``)
-------------------------------------------------------------------------------------------------
* ``cardiomegaly``  -- the heart's width is multiplied by ``cardiomegaly_scale`` (height by half as
  much, centre pushed to the image right and down). Normal hearts vary per patient (cardiothoracic
  ratio about 0.38-0.52), so mild cardiomegaly overlaps the largest normal hearts.
* ``effusion``      -- fluid replaces lung air at one base (both with probability ``effusion_bilateral``):
  a meniscus whose upper edge rises laterally, blunting the costophrenic angle and hiding the dome.
* ``consolidation`` -- a lobulated, patchy opacity (thresholded sum of random blobs) anywhere in one lung.
* ``pneumothorax``  -- a rim of pleural air at the apex and lateral wall of one lung (the lung collapsed
  towards its lower medial corner): darker than lung, no markings, bounded on the lung side by a thin
  bright visceral pleural line. Its pixel mask is returned.

Where the code lives: this module holds the public API; ``anatomy.py`` draws patients (``Anatomy``,
``draw_anatomy``, the markings bank) and ``render.py`` renders a batch of studies, one function per
structure: body, heart and mediastinum, lungs and their markings, each finding, bones, gastric bubble,
the warp into the image frame and the exposure.

Randomness: nothing here touches global state; every draw comes from the ``numpy.random.Generator``
passed in (or one built from ``SeedSequence`` for the population helpers). ``render_study`` always
makes the same draws whatever is present, so two renders of one anatomy from equally seeded
generators differ only by the findings requested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .anatomy import Anatomy, draw_anatomy, patient_age, patient_sex
from .render import StudyDraws, draw_study, render_batch, visible_lungs

__all__ = [
    "FINDINGS",
    "PhantomConfig",
    "Anatomy",
    "Population",
    "draw_anatomy",
    "render_study",
    "simulate_population",
    "render_conditions",
    "patient_anatomy",
    "patient_age",
    "patient_sex",
    "lung_masks",
]

FINDINGS: tuple[str, ...] = ("cardiomegaly", "effusion", "consolidation", "pneumothorax")

_POPULATION_TAG = 0x5EEDCB01
_CONDITIONS_TAG = 0x5EEDCB02
_BATCH_STUDIES = 8          # studies rendered together in one vectorised batch (fastest measured) ...
_BATCH_PIXELS = 1 << 17     # ... unless that would exceed this many pixels


@dataclass(frozen=True)
class PhantomConfig:
    """Rendering and difficulty knobs. Intervals ``(lo, hi)`` are sampled uniformly per study.

    "Attenuation units" are those of ``A`` in ``image = 1 - exp(-1.8 A)``. A normal lung field sits near
    ``A = 0.2-0.3`` (image about 0.3-0.4), where 0.1 attenuation units change the image by about 0.1;
    soft tissue (mediastinum, abdomen) near ``A = 0.7-0.9`` (image about 0.75).

    Defaults were calibrated on CPU with the repo's downstream recipes (population of 1200 patients,
    prevalence 0.3 each): the small CNN trained on 200 images reaches macro F1 ~0.69-0.74 on test
    (per-finding AUC: cardiomegaly ~0.80, effusion ~0.84-0.91, consolidation ~0.73-0.77, pneumothorax
    ~1.0) and ~0.84 with 800 images; the pneumothorax is kept conspicuous so the segmentation task can
    learn it at all. Lower the ``*_contrast``/``*_width``/``*_height`` intervals to make findings subtler.
    """

    size: int = 64
    #: std of the signal-dependent noise at image value 0.5 (it scales with sqrt(image + 0.1)), before blur.
    noise_sigma: float = 0.03
    #: Gaussian blur std in pixels at size 64; scaled by size / 64.
    blur_sigma: float = 0.6
    #: per-study positioning jitter: shift std (image widths), rotation std (degrees), log-scale std.
    jitter_shift: float = 0.012
    jitter_rotation: float = 1.5
    jitter_scale: float = 0.025
    #: per-study exposure: attenuation is scaled by exp(N(0, exposure_jitter)) before the tone curve.
    exposure_jitter: float = 0.06
    #: strength of the lung markings, attenuation units at unit texture (a hilar vessel trunk).
    markings_contrast: float = 0.12
    #: cardiomegaly: multiplier on the heart's width (its height grows by half as much).
    cardiomegaly_scale: tuple[float, float] = (1.15, 1.45)
    #: effusion: fluid height at the lateral chest wall, as a fraction of the lung's height.
    effusion_height: tuple[float, float] = (0.15, 0.45)
    #: effusion: fraction of lung air the fluid replaces where it is deep (1 = as dense as the abdomen).
    effusion_density: tuple[float, float] = (0.45, 0.85)
    #: effusion: probability that an effusion is bilateral (else one side, chosen evenly).
    effusion_bilateral: float = 0.25
    #: consolidation: radius of the patch, image widths.
    consolidation_radius: tuple[float, float] = (0.04, 0.09)
    #: consolidation: fraction of lung air replaced in the patch.
    consolidation_contrast: tuple[float, float] = (0.35, 0.75)
    #: pneumothorax: collapse fraction of the lung towards its lower medial corner; the apical rim is
    #: about fraction x 0.4 image widths deep, the lateral rim about fraction x 0.3.
    pneumothorax_width: tuple[float, float] = (0.10, 0.30)
    #: pneumothorax: attenuation removed inside the pleural air (the markings are always removed too).
    pneumothorax_contrast: tuple[float, float] = (0.05, 0.12)
    #: pneumothorax: attenuation added along the visceral pleural line (one pixel wide before blur).
    pleural_line: tuple[float, float] = (0.08, 0.18)

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or int(self.size) != self.size or self.size < 16:
            raise ValueError(f"size must be an integer >= 16, got {self.size!r}")
        for name in ("cardiomegaly_scale", "effusion_height", "effusion_density", "consolidation_radius",
                     "consolidation_contrast", "pneumothorax_width", "pneumothorax_contrast", "pleural_line"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} must be an interval (lo, hi) with lo <= hi, got {(lo, hi)}")
        if not (0.0 <= self.pneumothorax_width[0] and self.pneumothorax_width[1] < 0.75):
            raise ValueError("pneumothorax_width must lie in [0, 0.75)")
        if min(self.noise_sigma, self.blur_sigma, self.jitter_shift, self.jitter_rotation, self.jitter_scale,
               self.exposure_jitter, self.markings_contrast) < 0:
            raise ValueError("noise, blur, jitter and markings settings must be >= 0")
        if not 0.0 <= self.effusion_bilateral <= 1.0:
            raise ValueError("effusion_bilateral is a probability")


@dataclass(frozen=True)
class Population:
    images: np.ndarray        # (N, size, size) float32 in [0, 1]
    labels: np.ndarray        # (N, len(FINDINGS)) int8 0/1, columns in FINDINGS order
    masks: np.ndarray         # (N, size, size) bool pneumothorax masks
    patient_ids: np.ndarray   # (N,) str, e.g. "P00042"
    study_ids: np.ndarray     # (N,) str, unique, e.g. "P00042_S1"


# ----------------------------------------------------------------------------------------------
# studies


def lung_masks(anatomy: Anatomy, config: PhantomConfig) -> np.ndarray:
    """Union of both visible lung fields (heart shadow excluded), bool (size, size), at the patient's
    own placement (zoom, offset, tilt) without any per-study jitter."""
    return visible_lungs([anatomy], int(config.size))[0]


def _render(anatomies: Sequence[Anatomy], flags: np.ndarray, draws: Sequence[StudyDraws], given: np.ndarray | None,
            config: PhantomConfig) -> tuple[np.ndarray, np.ndarray]:
    """``render_batch`` for findings flags (B, len(FINDINGS)) bool, columns in FINDINGS order."""
    return render_batch(anatomies, dict(zip(FINDINGS, flags.T, strict=True)), draws, given, config)


def _check_present(present: Mapping[str, bool]) -> np.ndarray:
    unknown = set(present) - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}; expected some of {FINDINGS}")
    return np.array([bool(present.get(f, False)) for f in FINDINGS])


def render_study(anatomy: Anatomy, present: Mapping[str, bool], rng: np.random.Generator, config: PhantomConfig,
                 pneumothorax_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns (image float32 (size,size) in [0,1], pneumothorax mask bool (size,size)).

    If ``pneumothorax_mask`` is given (bool, (size,size)), the pneumothorax is drawn exactly in that region
    (air, no markings, pleural line along its inner border) and that same mask is returned;
    ``present['pneumothorax']`` is then ignored. If no pneumothorax is present the mask is all False.
    Per-study jitter and finding severities are drawn from ``rng``; the number of draws never depends
    on ``present`` or on the mask.
    """
    flags = _check_present(present)
    size = int(config.size)
    given = None
    if pneumothorax_mask is not None:
        mask = np.asarray(pneumothorax_mask)
        if mask.shape != (size, size):
            raise ValueError(f"pneumothorax_mask has shape {mask.shape}, expected {(size, size)}")
        given = mask.astype(bool)[None]
    img, ptx = _render([anatomy], flags[None], [draw_study(rng, size)], given, config)
    return img[0], ptx[0]


# ----------------------------------------------------------------------------------------------
# populations


def _seed_entropy(seed: int) -> int:
    return int(seed) % (2**64)


def _check_prevalence(prevalence: Mapping[str, float]) -> np.ndarray:
    unknown = set(prevalence) - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown findings in prevalence: {sorted(unknown)}; expected some of {FINDINGS}")
    p = np.array([float(prevalence.get(f, 0.0)) for f in FINDINGS])
    if np.any((p < 0) | (p > 1)):
        raise ValueError("prevalences must lie in [0, 1]")
    return p


def simulate_population(n_patients: int, *, prevalence: Mapping[str, float], studies_per_patient: tuple[int, int],
                        config: PhantomConfig, seed: int) -> Population:
    """Each patient gets 1 anatomy and a number of studies uniform in [lo, hi]; each finding is present
    independently with its prevalence (missing findings: 0). Deterministic: the same arguments give
    bitwise identical arrays. Patient k's data depend only on (seed, k) -- its generator is
    ``default_rng(SeedSequence([tag, seed, k]))`` -- so growing the population keeps earlier patients
    identical. Each study is exactly ``render_study`` with the patient's generator, in study order."""
    p = _check_prevalence(prevalence)
    lo, hi = (int(v) for v in studies_per_patient)
    if not 1 <= lo <= hi:
        raise ValueError(f"studies_per_patient must be (lo, hi) with 1 <= lo <= hi, got {studies_per_patient}")
    n_patients = int(n_patients)
    if n_patients < 0:
        raise ValueError("n_patients must be >= 0")
    size = int(config.size)
    entropy = _seed_entropy(seed)
    anatomies, flags, draws, pids, sids = [], [], [], [], []
    for k in range(n_patients):
        rng = np.random.default_rng(np.random.SeedSequence([_POPULATION_TAG, entropy, k]))
        anatomy = draw_anatomy(rng)
        n_studies = int(rng.integers(lo, hi + 1))
        present = rng.random((n_studies, len(FINDINGS))) < p
        for j in range(n_studies):
            anatomies.append(anatomy)
            flags.append(present[j])
            draws.append(draw_study(rng, size))
            pids.append(f"P{k:05d}")
            sids.append(f"P{k:05d}_S{j + 1}")
    n = len(anatomies)
    labels = np.array(flags, dtype=bool).reshape(n, len(FINDINGS))
    images = np.empty((n, size, size), np.float32)
    masks = np.empty((n, size, size), bool)
    step = _batch_size(size)
    for first in range(0, n, step):
        last = min(first + step, n)
        images[first:last], masks[first:last] = _render(anatomies[first:last], labels[first:last],
                                                         draws[first:last], None, config)
    return Population(images=images, labels=labels.astype(np.int8), masks=masks,
                      patient_ids=np.array(pids, dtype=str), study_ids=np.array(sids, dtype=str))


def _batch_size(size: int) -> int:
    return max(1, min(_BATCH_STUDIES, _BATCH_PIXELS // (size * size)))


def patient_anatomy(k: int, *, seed: int) -> Anatomy:
    """The anatomy of patient k of ``simulate_population(..., seed=seed)`` (its generator's first draw)."""
    return draw_anatomy(np.random.default_rng(np.random.SeedSequence([_POPULATION_TAG, _seed_entropy(seed), int(k)])))


def render_conditions(labels: np.ndarray, masks: np.ndarray | None, *, config: PhantomConfig, seed: int,
                      anatomies: Sequence[Anatomy] | None = None) -> np.ndarray:
    """Fresh phantoms (each a NEW random patient, or a new study of ``anatomies[i]`` where given) showing
    exactly the requested findings.

    ``labels`` (N, len(FINDINGS)) 0/1; ``masks`` (N, size, size) bool or None. Where masks are given the
    pneumothorax is drawn in each row's mask (rows whose mask is empty get none) and the pneumothorax
    column of ``labels`` is ignored. Returns images (N, size, size) float32. Row i depends only on
    (seed, i) and its own labels/mask; the seed stream is separate from ``simulate_population``'s, so
    equal seeds never re-render a population patient."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(FINDINGS):
        raise ValueError(f"labels must have shape (N, {len(FINDINGS)}), got {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    size = int(config.size)
    n = labels.shape[0]
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != (n, size, size):
            raise ValueError(f"masks must have shape {(n, size, size)}, got {masks.shape}")
        masks = masks.astype(bool, copy=False)
    if anatomies is not None and len(anatomies) != n:
        raise ValueError(f"anatomies has {len(anatomies)} entries, labels have {n} rows")
    entropy = _seed_entropy(seed)
    out = np.empty((n, size, size), dtype=np.float32)
    step = _batch_size(size)
    for first in range(0, n, step):
        rows = range(first, min(first + step, n))
        batch, draws = [], []
        for i in rows:
            rng = np.random.default_rng(np.random.SeedSequence([_CONDITIONS_TAG, entropy, i]))
            fresh = draw_anatomy(rng)
            batch.append(fresh if anatomies is None else anatomies[i])
            draws.append(draw_study(rng, size))
        flags = labels[first:rows.stop].astype(bool)
        given = None if masks is None else masks[first:rows.stop]
        out[first:rows.stop], _ = _render(batch, flags, draws, given, config)
    return out
