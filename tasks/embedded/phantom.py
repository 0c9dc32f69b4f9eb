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

Randomness: nothing here touches global state; every draw comes from the ``numpy.random.Generator``
passed in (or one built from ``SeedSequence`` for the population helpers). ``render_study`` always
makes the same draws whatever is present, so two renders of one anatomy from equally seeded
generators differ only by the findings requested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from .anatomy import Anatomy, draw_anatomy

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
    "lung_masks",
]

FINDINGS: tuple[str, ...] = ("cardiomegaly", "effusion", "consolidation", "pneumothorax")

_TONE = 1.8                 # image = 1 - exp(-_TONE * A)
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


_SIDE_FIELDS = ("apex_y", "apex_x", "lung_lateral", "lung_medial", "mediastinum_flare", "costophrenic_y",
                "dome_y", "dome_x")
_SCALAR_FIELDS = (
    "zoom", "offset_x", "offset_y", "tilt", "body_half_width", "shoulder_half_width", "neck_half_width",
    "shoulder_y", "soft_density", "air", "heart_x", "heart_y", "heart_half_width", "heart_half_height",
    "heart_tilt", "heart_density", "knob_x", "knob_y", "knob_radius", "trachea_half_width", "spine_half_width",
    "bone_density", "vertebra_period", "vertebra_phase", "rib_start_y", "rib_spacing",
    "rib_curvature", "rib_peak", "rib_width", "anterior_slope", "clavicle_y", "clavicle_slope",
    "bubble_radius", "bubble_x", "bubble_y",
)


@dataclass(frozen=True)
class Population:
    images: np.ndarray        # (N, size, size) float32 in [0, 1]
    labels: np.ndarray        # (N, len(FINDINGS)) int8 0/1, columns in FINDINGS order
    masks: np.ndarray         # (N, size, size) bool pneumothorax masks
    patient_ids: np.ndarray   # (N,) str, e.g. "P00042"
    study_ids: np.ndarray     # (N,) str, unique, e.g. "P00042_S1"


class _Params:
    """Anatomy parameters of a batch of studies as (B, 1, 1) float32 arrays (per side: a pair of them)."""

    def __init__(self, anatomies: Sequence[Anatomy]) -> None:
        table = np.array([[getattr(a, name) for name in _SCALAR_FIELDS]
                          + [v for name in _SIDE_FIELDS for v in getattr(a, name)] for a in anatomies], np.float32)
        table = table.T.reshape(table.shape[1], -1, 1, 1)
        for i, name in enumerate(_SCALAR_FIELDS):
            setattr(self, name, table[i])
        n = len(_SCALAR_FIELDS)
        for i, name in enumerate(_SIDE_FIELDS):
            setattr(self, name, (table[n + 2 * i], table[n + 2 * i + 1]))

    def side(self, i: int, rows=slice(None)) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name)[i][rows] for name in _SIDE_FIELDS)


# ----------------------------------------------------------------------------------------------
# geometry
#
# Rendering uses two frames. In the axis-aligned "pre" frame pixel (i, j) sits at patient coordinates
# X_j = (x_j - offset_x) / scale, Y_i = (y_i - offset_y) / scale, so every term that depends on one
# coordinate only is a row or a column vector and costs next to nothing per pixel. Rotation (the patient's
# tilt plus the study's jitter) is applied at the end as one bilinear warp into the image frame, where
# pneumothorax masks, noise and blur live.


@lru_cache(maxsize=16)
def _axis(size: int) -> np.ndarray:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    c.setflags(write=False)
    return c


def _sat(v: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] in place (v must be a fresh temporary)."""
    np.maximum(v, 0.0, out=v)
    return np.minimum(v, 1.0, out=v)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = _sat(t)
    return t * t * (3.0 - 2.0 * t)


class _Frame:
    """Pre-frame coordinates of a batch: X (B, 1, W), Y (B, H, 1), pixel pitch px (B, 1, 1), all in
    patient units, and each study's rotation (B,) in radians."""

    def __init__(self, P: _Params, jitter: np.ndarray, size: int) -> None:
        axis = _axis(size)
        inv = _col(1.0 / (P.zoom.ravel() * np.exp(jitter[:, 3])))
        self.X = (axis.reshape(1, 1, -1) - _col(P.offset_x.ravel() + jitter[:, 0])) * inv
        self.Y = (axis.reshape(1, -1, 1) - _col(P.offset_y.ravel() + jitter[:, 1])) * inv
        self.px = inv * np.float32(1.0 / size)
        self.angle = P.tilt.ravel().astype(np.float64) + jitter[:, 2]
        self.size = size


def _lung_span(t, apex, ax, lat, med, flare, cp):
    """Medial (a) and lateral (b) border of a lung, as distances from the midline, at relative height t
    (0 = apex, 1 = costophrenic angle): a rounded apex, a near-vertical mediastinal border that flares
    out towards the heart, a lateral wall widening downwards."""
    tm = np.minimum(t * (1.0 / 0.22), 1.0)
    tl = np.minimum(t * (1.0 / 0.9), 1.0)
    a = ax - (ax - med) * np.sqrt(tm * (2.0 - tm)) + flare * _smoothstep((t - 0.4) * (1.0 / 0.35))
    b = ax + (lat - ax) * np.sqrt(tl * (2.0 - tl))
    return a, b


def _lung_inside(u, Y, apex, ax, lat, med, flare, cp, dome, dc):
    """Approximate signed distance (positive inside, patient units) to one lung field; u = distance
    from the midline towards that lung's side. Terms of Y alone stay as small as Y is."""
    t = _sat((Y - apex) * (1.0 / (cp - apex)))
    a, b = _lung_span(t, apex, ax, lat, med, flare, cp)
    yd = dome + ((cp - dome) / ((lat - dc) ** 2)) * (u - dc) ** 2      # the diaphragm dome
    inside = np.minimum(u - a, b - u)
    np.minimum(inside, yd - Y, out=inside)
    np.minimum(inside, Y - apex, out=inside)
    return inside


def _heart(P: _Params, F: _Frame, scale: np.ndarray):
    """(thickness profile in [0, 1], soft mask) of the heart; ``scale`` (B, 1, 1) widens it (cardiomegaly)."""
    hw = P.heart_half_width * scale
    hh = P.heart_half_height * (1.0 + 0.5 * (scale - 1.0))
    hx = F.X - (P.heart_x + 0.35 * (hw - P.heart_half_width))
    hy = F.Y - (P.heart_y + 0.3 * (hh - P.heart_half_height))
    c = np.cos(P.heart_tilt)
    s = np.sin(P.heart_tilt)
    q1 = (c / hw) * hx + (s / hw) * hy
    q2 = (c / hh) * hy - (s / hh) * hx
    q1 *= q1
    q2 *= q2
    q1 += q2
    omr = np.subtract(1.0, q1, out=q1)
    mask = _sat(omr * (0.5 * np.minimum(hw, hh) / F.px) + 0.5)
    thick = np.sqrt(np.maximum(omr, 0.0, out=omr), out=omr)
    return thick, mask


def _lungs(P: _Params, F: _Frame):
    """Per-lung signed inside distances [right, left] and the soft union mask."""
    ins = [_lung_inside(F.X * np.float32(sign), F.Y, *P.side(i)) for i, sign in ((0, -1.0), (1, 1.0))]
    lung = np.maximum(ins[0], ins[1])
    lung *= 1.0 / F.px
    lung += 0.5
    return ins, _sat(lung)


def _lerp_axis(stack: np.ndarray, coord: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``stack`` (B, ..) along ``axis`` at per-study texel coordinates
    ``coord`` (B, L), clamped at the edges."""
    n = stack.shape[axis]
    c = np.clip(coord, 0.0, n - 1.001)
    i0 = c.astype(np.intp)
    f = (c - i0).astype(np.float32)
    shape = [coord.shape[0], 1, 1]
    shape[axis] = coord.shape[1]
    i0 = i0.reshape(shape)
    f = f.reshape(shape)
    lo = np.take_along_axis(stack, i0, axis=axis)
    hi = np.take_along_axis(stack, i0 + 1, axis=axis)
    hi -= lo
    hi *= f
    lo += hi
    return lo


def _markings(anatomies: Sequence[Anatomy], F: _Frame) -> np.ndarray:
    """Each study's lung-markings texture resampled (separable bilinear) onto its pre-frame pixels."""
    tex = np.stack([a.markings for a in anatomies])
    res = tex.shape[-1]
    rows = _lerp_axis(tex, (F.Y[:, :, 0] + 0.5) * res - 0.5, axis=1)           # (B, H, res)
    return _lerp_axis(rows, (F.X[:, 0, :] + 0.5) * res - 0.5, axis=2)          # (B, H, W)


class _Warp:
    """Resampling of pre-frame stacks (B, n, n) into the image frame: pixel (i, j) of study b reads the
    pre-frame at (i, j) rotated by angle[b] about the image centre (edges clamped)."""

    def __init__(self, angle: np.ndarray, size: int) -> None:
        n = size
        ctr = (n - 1) / 2.0
        c = _col(np.cos(angle))
        s = _col(np.sin(angle))
        k = np.arange(n, dtype=np.float32) - np.float32(ctr)
        col = (c * k.reshape(1, 1, -1) + np.float32(ctr)) + s * k.reshape(1, -1, 1)
        row = (c * k.reshape(1, -1, 1) + np.float32(ctr)) - s * k.reshape(1, 1, -1)
        hi = np.float32(n - 1.001)
        np.clip(col, 0.0, hi, out=col)
        np.clip(row, 0.0, hi, out=row)
        c0 = np.floor(col)
        r0 = np.floor(row)
        self.fc = col - c0
        self.fr = row - r0
        c0 = c0.astype(np.intp)
        r0 = r0.astype(np.intp)
        r0 *= n
        r0 += c0
        self.idx = r0                      # flat index within one image
        self.n = n

    def _index(self, rows, extra: np.ndarray | None = None) -> np.ndarray:
        base = (np.arange(len(rows)) * (self.n * self.n)).reshape(-1, 1, 1)
        idx = self.idx[rows] + base
        if extra is not None:
            idx += extra
        return idx

    def bilinear(self, stack: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``stack`` holds the studies ``rows`` (all when None), in that order."""
        rows = np.arange(stack.shape[0]) if rows is None else rows
        flat = stack.reshape(-1)
        n = self.n
        idx = self._index(rows)
        fc = self.fc[rows]
        top = flat.take(idx)
        v = flat.take(idx + 1)
        v -= top
        v *= fc
        top += v
        idx += n
        bot = flat.take(idx)
        v = flat.take(idx + 1)
        v -= bot
        v *= fc
        bot += v
        bot -= top
        bot *= self.fr[rows]
        top += bot
        return top

    def nearest(self, stack: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(stack.shape[0]) if rows is None else rows
        extra = (self.fr[rows] > 0.5) * self.n + (self.fc[rows] > 0.5)
        return stack.reshape(-1).take(self._index(rows, extra))


def lung_masks(anatomy: Anatomy, config: PhantomConfig) -> np.ndarray:
    """Union of both visible lung fields (heart shadow excluded), bool (size, size), at the patient's
    own placement (zoom, offset, tilt) without any per-study jitter."""
    P = _Params([anatomy])
    F = _Frame(P, np.zeros((1, 4)), int(config.size))
    _, lung = _lungs(P, F)
    _, heart = _heart(P, F, np.ones((1, 1, 1), np.float32))
    visible = lung * (1.0 - heart)
    return _Warp(F.angle, F.size).bilinear(visible)[0] > 0.5


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of each (H, W) image of a (B, H, W) float32 stack, edges replicated."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    k = np.exp(-0.5 * (np.arange(r + 1) / sigma) ** 2)
    k /= k[0] + 2.0 * k[1:].sum()
    k = k.astype(np.float32)
    h, w = img.shape[1:]
    pad = np.pad(img, ((0, 0), (r, r), (r, r)), mode="edge")
    rows = pad[:, r:r + h, :] * k[0]
    for j in range(1, r + 1):
        rows += (pad[:, r - j:r - j + h, :] + pad[:, r + j:r + j + h, :]) * k[j]
    out = rows[:, :, r:r + w] * k[0]
    for j in range(1, r + 1):
        out += (rows[:, :, r - j:r - j + w] + rows[:, :, r + j:r + j + w]) * k[j]
    return out


# ----------------------------------------------------------------------------------------------
# rendering

_N_UNIFORM = 24


@dataclass
class _StudyDraws:
    normal: np.ndarray    # (5,)   jitter x, y, rotation, log-scale, exposure
    uniform: np.ndarray   # (_N_UNIFORM,) finding choices and severities
    blobs: np.ndarray     # (6, 3) consolidation blob offsets and sizes
    noise: np.ndarray     # (size, size) float32


def _draw_study(rng: np.random.Generator, size: int) -> _StudyDraws:
    return _StudyDraws(rng.standard_normal(5), rng.random(_N_UNIFORM), rng.standard_normal((6, 3)),
                       rng.standard_normal((size, size), dtype=np.float32))


def _between(lo_hi: tuple[float, float], v: np.ndarray) -> np.ndarray:
    return (lo_hi[0] + (lo_hi[1] - lo_hi[0]) * np.asarray(v)).astype(np.float32)


def _col(v) -> np.ndarray:
    return np.asarray(v, np.float32).reshape(-1, 1, 1)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """4-neighbour dilation of each (H, W) image of a (B, H, W) bool stack."""
    out = mask.copy()
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    out[:, :, 1:] |= mask[:, :, :-1]
    out[:, :, :-1] |= mask[:, :, 1:]
    return out


def _side_params(P: _Params, rows: np.ndarray, left: np.ndarray) -> list[np.ndarray]:
    """Per-study lung parameters (B', 1, 1) of the side chosen by ``left`` (B', 1, 1) bool."""
    return [np.where(left, b, a) for a, b in zip(P.side(0, rows), P.side(1, rows))]


def _pneumothorax_pre(P: _Params, F: _Frame, ins, visible, rows, left, width, anchor) -> np.ndarray:
    """Pre-frame masks of pleural air between the chest wall and the lung collapsed towards its lower
    medial corner, for studies ``rows``; ``visible`` holds those rows' visible-lung masks."""
    apex, ax, lat, med, flare, cp, dome, dc = _side_params(P, rows, left)
    u = F.X[rows] * np.where(left, np.float32(1.0), np.float32(-1.0))
    y = F.Y[rows]
    own = np.where(left, ins[1][rows], ins[0][rows]) > 0
    own &= visible
    ua = med + 0.02
    ya = apex + anchor * (cp - apex)
    taper = _sat((ya + 0.1 - y) * 10.0)
    mask = np.zeros_like(own)
    todo = np.arange(len(rows))
    w = width.copy()
    for _attempt in range(8):
        omega = w[todo] / (1.0 - w[todo])
        u2 = ua[todo] + (u[todo] - ua[todo]) * (1.0 + omega * taper[todo])
        y2 = np.where(y[todo] < ya[todo], ya[todo] + (y[todo] - ya[todo]) * (1.0 + omega), y[todo])
        collapsed = _lung_inside(u2, y2, apex[todo], ax[todo], lat[todo], med[todo], flare[todo], cp[todo],
                                 dome[todo], dc[todo]) > 0
        mask[todo] = own[todo] & ~collapsed
        # a tiny image can leave a thin rim without a pixel: widen those until it covers one
        empty = ~mask[todo].any(axis=(1, 2)) & own[todo].any(axis=(1, 2))
        todo = todo[empty]
        if todo.size == 0:
            break
        w[todo] = np.minimum(w[todo] * 1.5 + 0.02, 0.7)
    return mask


def _render(anatomies: Sequence[Anatomy], present: np.ndarray, draws: Sequence[_StudyDraws],
            given: np.ndarray | None, config: PhantomConfig) -> tuple[np.ndarray, np.ndarray]:
    """Render a batch of studies: present (B, 4) bool in FINDINGS order; given (B, H, W) bool
    pneumothorax masks drawn as they are (``present[:, 3]`` then ignored), or None to draw them.
    Every study's pixels depend on its own inputs only, never on the rest of the batch."""
    size = int(config.size)
    B = len(anatomies)
    P = _Params(anatomies)
    g = np.stack([d.normal for d in draws])                     # (B, 5) float64
    r = np.stack([d.uniform for d in draws])                    # (B, 24) float64
    jitter = np.stack([g[:, 0] * config.jitter_shift, g[:, 1] * config.jitter_shift,
                       np.radians(g[:, 2] * config.jitter_rotation), g[:, 3] * config.jitter_scale], axis=1)
    tone = _col(-_TONE * np.exp(g[:, 4] * config.exposure_jitter))
    F = _Frame(P, jitter, size)
    X, Y, px = F.X, F.Y, F.px
    u = np.abs(X)

    # ---- body: neck -> shoulders -> chest wall; soft tissue thickest in the middle ---------------
    bw = (P.neck_half_width
          + (P.shoulder_half_width - P.neck_half_width) * _smoothstep(Y * (1.0 / 0.2) + (0.5 - P.shoulder_y / 0.2))
          - (P.shoulder_half_width - P.body_half_width)
          * _smoothstep(Y * (1.0 / 0.14) + (0.5 - (P.shoulder_y + 0.17) / 0.14)))
    thick = u * (1.0 / bw)
    thick *= thick
    np.subtract(1.0, thick, out=thick)
    np.sqrt(np.maximum(thick, 0.0, out=thick), out=thick)
    body = _sat((bw / px + 0.5) - u / px)
    thick *= 0.55 * P.soft_density
    thick += 0.45 * P.soft_density
    thick *= body
    tissue = thick
    A = tissue + np.float32(0.02)

    # ---- heart, aortic knob, trachea --------------------------------------------------------------
    cardio = _col(np.where(present[:, 0], _between(config.cardiomegaly_scale, r[:, 0]), 1.0))
    heart_thick, heart_mask = _heart(P, F, cardio)
    below = _sat((P.dome_y[1] + 0.03 - Y) * 30.0)            # the heart's lower edge merges with the abdomen
    below *= _sat((Y - P.heart_y + 0.9 * P.heart_half_height) * (1.0 / (0.5 * P.heart_half_height)))
    heart_thick *= P.heart_density * below
    A += heart_thick
    k1 = 0.5 / (P.knob_radius * px)
    kx = X - P.knob_x
    ky = Y - P.knob_y
    knob = _sat((0.5 * P.knob_radius / px + 0.5 - k1 * ky * ky) - k1 * kx * kx)
    tx = X * (1.0 / P.trachea_half_width)
    A -= (0.16 * _sat((P.knob_y + 0.07 - Y) * 15.0)) * np.sqrt(np.maximum(1.0 - tx * tx, 0.0))

    # ---- lungs -----------------------------------------------------------------------------------
    ins, lung = _lungs(P, F)
    lung_eff = 1.0 - 0.95 * heart_mask
    lung_eff *= lung
    lung_eff *= 1.0 - knob
    depth = _sat(np.maximum(ins[0], ins[1]) * (1.0 / 0.03))
    depth *= 0.15
    depth += 0.85
    fill = None

    # effusion: uniforms 1..6
    if present[:, 1].any():
        fill = np.zeros_like(A)
        both = r[:, 1] < config.effusion_bilateral
        for side, sign in ((0, -1.0), (1, 1.0)):
            rows = np.flatnonzero(present[:, 1] & (both | ((r[:, 2] < 0.5) == (side == 0))))
            if rows.size == 0:
                continue
            apex, ax, lat, med, flare, cp, dome, dc = P.side(side, rows)
            h = _col(_between(config.effusion_height, r[rows, 3 + side]))
            dens = _col(_between(config.effusion_density, r[rows, 5]))
            v6 = _col(r[rows, 6])
            us = X[rows] * np.float32(sign)
            drop = (0.05 + 0.15 * v6) * h * (cp - apex) + 0.01
            v = _sat((us - med) * (1.0 / (lat - med)))
            y_surface = (cp - h * (cp - apex)) + drop * (1.0 - v * v * v)     # meniscus: rises laterally
            inv_fade = 1.0 / (0.02 + 0.02 * v6)
            layer = _sat(Y[rows] * inv_fade - y_surface * inv_fade)
            layer *= dens * (us > 0)
            fill[rows] = np.maximum(fill[rows], layer)

    # consolidation: uniforms 7..11, blobs
    rows = np.flatnonzero(present[:, 2])
    if rows.size:
        if fill is None:
            fill = np.zeros_like(A)
        left = _col(r[rows, 7] >= 0.5).astype(bool)
        apex, ax, lat, med, flare, cp, dome, dc = _side_params(P, rows, left)
        rad = _between(config.consolidation_radius, r[rows, 9]).reshape(-1, 1, 1)
        contrast = _col(_between(config.consolidation_contrast, r[rows, 10]))
        tc = _col(0.12 + 0.58 * r[rows, 8])
        a, b = _lung_span(tc, apex, ax, lat, med, flare, cp)
        ucen = a + _col(0.3 + 0.55 * r[rows, 11]) * (b - a)
        dome_at = dome + ((cp - dome) / ((lat - dc) ** 2)) * (ucen - dc) ** 2
        ycen = np.minimum(apex + tc * (cp - apex), dome_at - 0.5 * rad)             # keep it above the diaphragm
        sign = np.where(left, np.float32(1.0), np.float32(-1.0))
        blobs = np.stack([draws[i].blobs for i in rows]).astype(np.float32)          # (B', 6, 3)
        bx = (sign * ucen)[:, :, 0] + 0.6 * rad[:, :, 0] * blobs[:, :, 0]             # (B', 6)
        by = ycen[:, :, 0] + 0.6 * rad[:, :, 0] * blobs[:, :, 1]
        sj = rad[:, :, 0] * (0.6 + 0.12 * np.clip(blobs[:, :, 2], -2.0, 2.0))
        sj[:, 4:] *= 0.5                                                              # the holes are smaller
        # six separable Gaussian blobs (two of them negative: holes), arguments clamped to stay normal
        weight = np.array([1.0, 1.0, 1.0, 1.0, -0.45, -0.45], np.float32)
        gx = np.exp(np.maximum(-0.5 * ((X[rows] - bx[:, :, None]) / sj[:, :, None]) ** 2, -30.0))   # (B', 6, W)
        gy = np.exp(np.maximum(-0.5 * ((Y[rows][:, :, 0][:, None, :] - by[:, :, None]) / sj[:, :, None]) ** 2,
                               -30.0)) * weight[:, None]                                       # (B', 6, H)
        field = gy[:, 0, :, None] * gx[:, 0, None, :]
        for j in range(1, 6):
            field += gy[:, j, :, None] * gx[:, j, None, :]
        field -= 0.45
        field *= 4.0
        cons = _sat(field)
        cons *= contrast * (X[rows] * sign > 0)
        fill[rows] = np.maximum(fill[rows], cons)

    air = tissue
    air *= P.air
    air *= lung_eff
    air *= depth
    if fill is not None:
        air *= 1.0 - fill
    A -= air

    # lung markings (hidden by fluid and consolidation; pleural air removes them later)
    markings = _markings(anatomies, F)
    markings *= lung_eff
    markings *= np.float32(config.markings_contrast)
    if fill is not None:
        markings *= 1.0 - 0.7 * fill
    A += markings

    # ---- bones -----------------------------------------------------------------------------------
    sx = X * (1.0 / P.spine_half_width)
    phase = Y * (1.0 / P.vertebra_period) + P.vertebra_phase      # vertebral end plates
    phase -= np.rint(phase)
    bone = np.sqrt(np.maximum(1.0 - sx * sx, 0.0)) * (0.63 - 0.48 * phase * phase)
    right = X < 0
    lat = np.where(right, *P.lung_lateral)
    base = P.rib_curvature * P.rib_peak * P.rib_peak
    cage_x = _sat((lat + 0.035 - u) * 50.0) * (0.4 + 0.6 * _sat((u - 0.04) * 12.5))     # faint over the mediastinum
    cage_y = _sat((P.costophrenic_y[0] + 0.04 - Y) * 25.0)
    ratio = P.rib_spacing / P.rib_width
    posterior = P.rib_curvature * (u - P.rib_peak) ** 2 - base
    anterior = P.rib_curvature * (lat - P.rib_peak) ** 2 - base + P.anterior_slope * (lat - u)
    for curve, strength, n_ribs in ((posterior, 0.22 * cage_x, 10),
                                    (anterior, (0.4 * 0.22) * cage_x * _sat((u - 0.09) * 12.0), 6)):
        k = (Y - P.rib_start_y) * (1.0 / P.rib_spacing) - curve * (1.0 / P.rib_spacing)   # rib index, continuous
        d = np.rint(np.clip(k, 0.0, n_ribs - 1.0))
        np.subtract(k, d, out=d)
        d *= ratio
        d *= d
        np.subtract(1.0, d, out=d)
        np.sqrt(np.maximum(d, 0.0, out=d), out=d)
        d *= strength
        d *= cage_y
        bone += d
    cu = u - 0.03
    yc = P.clavicle_y - P.clavicle_slope * cu + 0.8 * (cu - 0.15) ** 2 - 0.018
    dcl = Y * (1.0 / 0.018) - yc * (1.0 / 0.018)
    dcl *= dcl
    np.subtract(1.0, dcl, out=dcl)
    np.sqrt(np.maximum(dcl, 0.0, out=dcl), out=dcl)
    dcl *= 0.7 * _sat(cu * 40.0) * _sat((0.36 - cu) * 30.0)
    bone += dcl
    bone *= P.bone_density
    A += bone

    # gastric bubble under the left hemidiaphragm
    if (P.bubble_radius > 0).any():
        rb = np.maximum(P.bubble_radius, 1e-3)
        bx = (X - P.bubble_x) * (1.0 / rb)
        by = (Y - P.bubble_y) * (1.0 / (0.7 * rb))
        q = (1.0 - by * by) - bx * bx
        np.sqrt(np.maximum(q, 0.0, out=q), out=q)
        q *= np.where(P.bubble_radius > 0, np.float32(0.25), np.float32(0.0))
        A -= q

    # ---- into the image frame; pneumothorax ---------------------------------------------------
    warp = _Warp(F.angle, size)
    img = warp.bilinear(A)
    if given is not None:
        ptx = given.copy()
    else:
        ptx = np.zeros((B, size, size), dtype=bool)
        rows = np.flatnonzero(present[:, 3])                    # uniforms 12..14
        if rows.size:
            visible = (lung[rows] * (1.0 - heart_mask[rows])) > 0.5
            pre = _pneumothorax_pre(P, F, ins, visible, rows, _col(r[rows, 12] >= 0.5).astype(bool),
                                    _col(_between(config.pneumothorax_width, r[rows, 13])),
                                    _col(0.55 + 0.4 * r[rows, 14]))
            ptx[rows] = warp.nearest(pre, rows)
            lost = np.flatnonzero(~ptx[rows].any(axis=(1, 2)) & pre.any(axis=(1, 2)))
            if lost.size:                                       # a one-pixel rim can alias away: thicken it
                ptx[rows[lost]] = warp.nearest(_dilate(pre[lost]), rows[lost])
    rows = np.flatnonzero(ptx.any(axis=(1, 2)))                 # uniforms 15, 16
    if rows.size:
        p = ptx[rows]
        line = _dilate(p)
        line &= ~p
        line &= warp.nearest(lung[rows], rows) > 0.5
        removed = warp.bilinear(markings[rows], rows)          # pleural air has no lung markings
        removed += _col(_between(config.pneumothorax_contrast, r[rows, 15]))
        removed *= p
        img[rows] += line * _col(_between(config.pleural_line, r[rows, 16])) - removed

    # ---- tone, exposure, noise, blur -------------------------------------------------------------
    np.maximum(img, 0.0, out=img)
    img *= tone
    np.exp(img, out=img)
    np.subtract(1.0, img, out=img)
    if config.noise_sigma > 0:
        noise = np.stack([d.noise for d in draws])
        noise *= np.float32(config.noise_sigma / math.sqrt(0.6))
        noise *= np.sqrt(img + 0.1)
        img += noise
    if config.blur_sigma > 0:
        img = _blur(img, config.blur_sigma * size / 64.0)
    _sat(img)
    return img.astype(np.float32, copy=False), ptx


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
    img, ptx = _render([anatomy], flags[None], [_draw_study(rng, size)], given, config)
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
            draws.append(_draw_study(rng, size))
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
            draws.append(_draw_study(rng, size))
        flags = labels[first:rows.stop].astype(bool)
        given = None if masks is None else masks[first:rows.stop]
        out[first:rows.stop], _ = _render(batch, flags, draws, given, config)
    return out
