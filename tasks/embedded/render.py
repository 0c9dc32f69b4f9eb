"""How a batch of phantom studies is rendered, one function per structure. The entry points
(``render_study``, ``simulate_population``, ``render_conditions``, ``lung_masks``) are in ``phantom.py``.

Two frames. In the axis-aligned "pre" frame pixel (i, j) sits at patient coordinates
X_j = (x_j - offset_x) / scale, Y_i = (y_i - offset_y) / scale, so every term that depends on one coordinate
only is a row or a column vector and costs next to nothing per pixel. Rotation (the patient's tilt plus the
study's jitter) is applied at the end as one bilinear warp into the image frame, where pneumothorax masks,
noise and blur live.

Batches. Everything works on B studies at once: per-study parameters are (B, 1, 1) arrays, coordinates
(B, 1, W) or (B, H, 1), images (B, H, W); a study's pixels depend on its own inputs only.

The attenuation ``A`` is summed structure by structure in a fixed order (a float sum depends on its order,
and the images must stay bitwise the same): background, soft tissue, heart, trachea, lung air (less where
fluid or consolidation fills the lung), lung markings, bones, gastric bubble.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, get_type_hints

import numpy as np

from .anatomy import Anatomy

if TYPE_CHECKING:
    from .phantom import PhantomConfig

__all__ = ["StudyDraws", "draw_study", "render_batch", "visible_lungs"]

_TONE = 1.8                 # image = 1 - exp(-_TONE * A)
_BACKGROUND = 0.02          # attenuation everywhere, outside the body too (scatter)
_BLOB_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, -0.45, -0.45], np.float32)   # a consolidation's blobs; < 0: holes


# ----------------------------------------------------------------------------------------------
# a study's random draws


@dataclass(frozen=True)
class _Jitter:
    """Positioning and exposure draws of a batch: standard normals, (B,) float64 each, in draw order."""

    shift_x: np.ndarray
    shift_y: np.ndarray
    rotation: np.ndarray
    log_scale: np.ndarray
    exposure: np.ndarray


@dataclass(frozen=True)
class _Severities:
    """Uniform [0, 1) draws that choose the findings' sides, places and strengths, (B,) float64 each, in draw
    order. Every study draws them all, whatever it shows, so a generator's stream never depends on findings."""

    cardiomegaly_scale: np.ndarray
    effusion_bilateral: np.ndarray      # below PhantomConfig.effusion_bilateral: both bases
    effusion_side: np.ndarray           # one base: below 0.5 the right (image left), else the left
    effusion_height_right: np.ndarray
    effusion_height_left: np.ndarray
    effusion_density: np.ndarray
    effusion_meniscus: np.ndarray       # how far the meniscus dips medially, how soft its edge is
    consolidation_side: np.ndarray      # below 0.5 the right lung, else the left
    consolidation_height: np.ndarray    # from high in the lung (0) to low (1)
    consolidation_radius: np.ndarray
    consolidation_contrast: np.ndarray
    consolidation_lateral: np.ndarray   # from the medial border (0) towards the lateral one (1)
    pneumothorax_side: np.ndarray       # below 0.5 the right lung, else the left
    pneumothorax_width: np.ndarray
    pneumothorax_anchor: np.ndarray     # height above which the lung collapses downwards, mid (0) to low (1)
    pneumothorax_contrast: np.ndarray
    pleural_line: np.ndarray


_UNUSED_UNIFORMS = 7        # drawn after the severities and never read; still drawn, so that no image changes


@dataclass(frozen=True)
class StudyDraws:
    """One study's random draws as they came from its generator; their order fixes every image."""

    normals: np.ndarray     # (len(fields(_Jitter)),) float64
    uniforms: np.ndarray    # (len(fields(_Severities)) + _UNUSED_UNIFORMS,) float64, the severities first
    blobs: np.ndarray       # (len(_BLOB_WEIGHTS), 3) float64 normals: consolidation blob offsets (x, y), size
    noise: np.ndarray       # (size, size) float32 normals


def draw_study(rng: np.random.Generator, size: int) -> StudyDraws:
    """Draw one study's randomness: the same draws whatever the study shows."""
    normals = rng.standard_normal(len(fields(_Jitter)))
    uniforms = rng.random(len(fields(_Severities)) + _UNUSED_UNIFORMS)
    blobs = rng.standard_normal((len(_BLOB_WEIGHTS), 3))
    noise = rng.standard_normal((size, size), dtype=np.float32)
    return StudyDraws(normals, uniforms, blobs, noise)


@dataclass(frozen=True)
class _BatchDraws:
    """A batch's draws by name: blobs (B, len(_BLOB_WEIGHTS), 3), noise (B, size, size)."""

    jitter: _Jitter
    severities: _Severities
    blobs: np.ndarray
    noise: np.ndarray

    @classmethod
    def stack(cls, draws: Sequence[StudyDraws]) -> _BatchDraws:
        """The studies' draws gathered into a batch and named."""
        normals = np.stack([d.normals for d in draws], axis=1)
        uniforms = np.stack([d.uniforms for d in draws], axis=1)
        return cls(jitter=_Jitter(*normals), severities=_Severities(*uniforms[:len(fields(_Severities))]),
                   blobs=np.stack([d.blobs for d in draws]), noise=np.stack([d.noise for d in draws]))


# ----------------------------------------------------------------------------------------------
# a batch, structure by structure


def render_batch(anatomies: Sequence[Anatomy], present: Mapping[str, np.ndarray], draws: Sequence[StudyDraws],
                 given: np.ndarray | None, config: PhantomConfig) -> tuple[np.ndarray, np.ndarray]:
    """Render a batch of studies: images (B, size, size) float32 in [0, 1] and pneumothorax masks, bool.

    ``present`` maps each finding to a (B,) bool array. ``given`` (B, size, size) bool masks are drawn as the
    pneumothorax exactly (``present["pneumothorax"]`` is then ignored); None draws the pneumothorax itself."""
    P = _Params(anatomies)
    drawn = _BatchDraws.stack(draws)
    severities = drawn.severities
    F = _Frame.jittered(P, drawn.jitter, config)

    tissue = _soft_tissue(P, F)
    heart, heart_mask = _heart(P, F, _cardiomegaly_scale(present["cardiomegaly"], severities, config))
    lungs = _lungs(P, F)
    aerated = _aerated_lung(lungs, heart_mask, _aortic_knob(P, F))
    fill = np.maximum(_effusion(P, F, present["effusion"], severities, config),
                      _consolidation(P, F, present["consolidation"], severities, drawn.blobs, config))
    markings = _lung_markings(anatomies, F, aerated, fill, config)

    A = tissue + np.float32(_BACKGROUND)
    A += heart
    A -= _trachea(P, F)
    A -= _lung_air(P, tissue, lungs, aerated, fill)
    A += markings
    A += _bones(P, F)
    A -= _gastric_bubble(P, F)

    warp = _Warp(F.angle, F.size)
    attenuation = warp.bilinear(A)
    if given is None:
        masks = _pneumothorax_masks(P, F, warp, lungs, heart_mask, present["pneumothorax"], severities, config)
    else:
        masks = given.copy()
    _draw_pneumothorax(attenuation, masks, warp, lungs, markings, severities, config)
    return _radiograph(attenuation, drawn, config), masks


def visible_lungs(anatomies: Sequence[Anatomy], size: int) -> np.ndarray:
    """``lung_masks`` of a batch of patients, bool (B, size, size)."""
    P = _Params(anatomies)
    F = _Frame.still(P, size)
    lungs = _lungs(P, F)
    _, heart_mask = _heart(P, F, np.ones((len(anatomies), 1, 1), np.float32))
    return _Warp(F.angle, size).bilinear(_visible(lungs.mask, heart_mask)) > 0.5


# ---- body -------------------------------------------------------------------------------------


def _soft_tissue(P: _Params, F: _Frame) -> np.ndarray:
    """Soft-tissue attenuation (B, H, W). The body's outline widens from the neck to the shoulders and
    narrows again to the chest wall; across it the tissue is thickest in the middle (a round profile on a flat
    floor), with a soft edge one pixel wide."""
    half_width = (P.neck_half_width
                  + (P.shoulder_half_width - P.neck_half_width)
                  * _smoothstep(F.Y * (1.0 / 0.2) + (0.5 - P.shoulder_y / 0.2))
                  - (P.shoulder_half_width - P.body_half_width)
                  * _smoothstep(F.Y * (1.0 / 0.14) + (0.5 - (P.shoulder_y + 0.17) / 0.14)))
    tissue = _chord(F.U * (1.0 / half_width))
    outline = _sat((half_width / F.px + 0.5) - F.U / F.px)
    tissue *= 0.55 * P.soft_density
    tissue += 0.45 * P.soft_density
    tissue *= outline
    return tissue


# ---- heart and mediastinum --------------------------------------------------------------------


def _cardiomegaly_scale(present: np.ndarray, severities: _Severities, config: PhantomConfig) -> np.ndarray:
    """Multiplier (B, 1, 1) on the heart's width: drawn from ``cardiomegaly_scale`` where cardiomegaly is
    present, else 1."""
    return _col(np.where(present, _between(config.cardiomegaly_scale, severities.cardiomegaly_scale), 1.0))


def _heart(P: _Params, F: _Frame, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The heart's attenuation and its soft mask (B, H, W). A tilted ellipse right of the image's midline
    (the patient's left), thickest in the middle; ``scale`` (B, 1, 1) enlarges it (cardiomegaly): width times
    ``scale``, height by half as much, centre pushed to the image right and down. Its shadow fades out at the
    top, into the great vessels, and below the left hemidiaphragm, where it merges with the abdomen."""
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
    thickness = np.sqrt(np.maximum(omr, 0.0, out=omr), out=omr)
    fade = _sat((P.left_lung.dome_y + 0.03 - F.Y) * 30.0)
    fade *= _sat((F.Y - P.heart_y + 0.9 * P.heart_half_height) * (1.0 / (0.5 * P.heart_half_height)))
    thickness *= P.heart_density * fade
    return thickness, mask


def _aortic_knob(P: _Params, F: _Frame) -> np.ndarray:
    """Soft mask (B, H, W) of the aortic knob, the arch's round bulge beside the trachea above the heart. It is
    soft tissue where there would be lung, so it shows only by displacing lung air."""
    k1 = 0.5 / (P.knob_radius * F.px)
    kx = F.X - P.knob_x
    ky = F.Y - P.knob_y
    return _sat((0.5 * P.knob_radius / F.px + 0.5 - k1 * ky * ky) - k1 * kx * kx)


def _trachea(P: _Params, F: _Frame) -> np.ndarray:
    """Attenuation the tracheal air removes (B, H, W): a round tube on the midline, from the top of the image
    down to just below the aortic knob."""
    return (0.16 * _sat((P.knob_y + 0.07 - F.Y) * 15.0)) * _chord(F.X * (1.0 / P.trachea_half_width))


# ---- lungs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LungShape:
    """One lung's outline for a batch, each field (B, 1, 1) float32 in patient units; the x positions
    (``apex_x``, ``lung_lateral``, ``lung_medial``, ``dome_x``) are distances from the midline towards its side.
    The fields are ``Anatomy``'s per-side fields, by name."""

    apex_y: np.ndarray
    apex_x: np.ndarray
    lung_lateral: np.ndarray
    lung_medial: np.ndarray
    mediastinum_flare: np.ndarray       # the lower medial border moves out by this much (the heart)
    costophrenic_y: np.ndarray
    dome_y: np.ndarray
    dome_x: np.ndarray

    def take(self, rows: np.ndarray) -> _LungShape:
        """The outline of the studies ``rows`` only."""
        return _LungShape(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def choose(left: np.ndarray, right_lung: _LungShape, left_lung: _LungShape) -> _LungShape:
        """Per study, ``left_lung`` where ``left`` (B, 1, 1) bool, else ``right_lung``."""
        return _LungShape(**{f.name: np.where(left, getattr(left_lung, f.name), getattr(right_lung, f.name))
                             for f in fields(_LungShape)})

    def level(self, t: np.ndarray) -> np.ndarray:
        """Height at relative height ``t`` (0 = apex, 1 = costophrenic angle)."""
        return self.apex_y + t * (self.costophrenic_y - self.apex_y)

    def span(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Medial and lateral border at relative height ``t``: a rounded apex, a near-vertical mediastinal
        border that flares out towards the heart, a lateral wall widening downwards."""
        tm = np.minimum(t * (1.0 / 0.22), 1.0)
        tl = np.minimum(t * (1.0 / 0.9), 1.0)
        medial = (self.apex_x - (self.apex_x - self.lung_medial) * np.sqrt(tm * (2.0 - tm))
                  + self.mediastinum_flare * _smoothstep((t - 0.4) * (1.0 / 0.35)))
        lateral = self.apex_x + (self.lung_lateral - self.apex_x) * np.sqrt(tl * (2.0 - tl))
        return medial, lateral

    def diaphragm(self, u: np.ndarray) -> np.ndarray:
        """Height of the diaphragm's dome at distance ``u`` from the midline, down to the costophrenic angle."""
        return (self.dome_y + ((self.costophrenic_y - self.dome_y) / ((self.lung_lateral - self.dome_x) ** 2))
                * (u - self.dome_x) ** 2)

    def inside(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Approximate signed distance into the lung field (positive inside, patient units) at distance ``u``
        from the midline and height ``y``. Terms of ``y`` alone stay as small as ``y`` is."""
        t = _sat((y - self.apex_y) * (1.0 / (self.costophrenic_y - self.apex_y)))
        medial, lateral = self.span(t)
        inside = np.minimum(u - medial, lateral - u)
        np.minimum(inside, self.diaphragm(u) - y, out=inside)
        np.minimum(inside, y - self.apex_y, out=inside)
        return inside


@dataclass(frozen=True)
class _LungFields:
    """Both lung fields of a batch in the pre frame, (B, H, W) each."""

    inside: tuple[np.ndarray, np.ndarray]   # signed distance into the right and the left lung
    mask: np.ndarray                        # their union, soft edge one pixel wide


def _lungs(P: _Params, F: _Frame) -> _LungFields:
    """Both lung fields, the right one on the image left."""
    right, left = (lung.inside(F.X * sign, F.Y) for lung, sign in P.sides())
    union = np.maximum(right, left)
    union *= 1.0 / F.px
    union += 0.5
    return _LungFields((right, left), _sat(union))


def _visible(lung: np.ndarray, heart_mask: np.ndarray) -> np.ndarray:
    """The lung fields less the heart's shadow."""
    return lung * (1.0 - heart_mask)


def _aerated_lung(lungs: _LungFields, heart_mask: np.ndarray, knob: np.ndarray) -> np.ndarray:
    """Where the lungs' air shows (B, H, W) in [0, 1]: the lung fields less the aortic knob and most of the
    heart's shadow (a little lung behind the heart still shows)."""
    aerated = 1.0 - 0.95 * heart_mask
    aerated *= lungs.mask
    aerated *= 1.0 - knob
    return aerated


def _lung_air(P: _Params, tissue: np.ndarray, lungs: _LungFields, aerated: np.ndarray,
              fill: np.ndarray) -> np.ndarray:
    """Attenuation the lungs' air removes from the soft tissue: the patient's fraction ``air`` of it where lung
    air shows, a little less within 0.03 of the lung's edge (a thinner lung in the beam), less again where
    fluid or consolidation fills the lung (``fill``, the fraction of air replaced)."""
    depth = _sat(np.maximum(*lungs.inside) * (1.0 / 0.03))
    depth *= 0.15
    depth += 0.85
    air = tissue * P.air
    air *= aerated
    air *= depth
    air *= 1.0 - fill
    return air


def _lung_markings(anatomies: Sequence[Anatomy], F: _Frame, aerated: np.ndarray, fill: np.ndarray,
                   config: PhantomConfig) -> np.ndarray:
    """Attenuation of the lung markings, the vessels (B, H, W): each patient's texture where lung air shows,
    mostly hidden where fluid or consolidation fills the lung. A pneumothorax removes them later."""
    markings = _resample_markings(anatomies, F)
    markings *= aerated
    markings *= np.float32(config.markings_contrast)
    markings *= 1.0 - 0.7 * fill
    return markings


def _resample_markings(anatomies: Sequence[Anatomy], F: _Frame) -> np.ndarray:
    """Each study's lung-markings texture resampled (separable bilinear) onto its pre-frame pixels."""
    tex = np.stack([a.markings for a in anatomies])
    res = tex.shape[-1]
    rows = _lerp_axis(tex, (F.Y[:, :, 0] + 0.5) * res - 0.5, axis=1)           # (B, H, res)
    return _lerp_axis(rows, (F.X[:, 0, :] + 0.5) * res - 0.5, axis=2)          # (B, H, W)


# ---- findings in the lungs ------------------------------------------------------------------


def _effusion(P: _Params, F: _Frame, present: np.ndarray, severities: _Severities,
              config: PhantomConfig) -> np.ndarray:
    """Fraction of lung air that pleural fluid replaces (B, H, W), zero without effusion: fluid at one base,
    or at both with probability ``effusion_bilateral``, each with its own height."""
    fill = F.zeros(np.float32)
    both = severities.effusion_bilateral < config.effusion_bilateral
    left = severities.effusion_side >= 0.5
    heights = (severities.effusion_height_right, severities.effusion_height_left)
    for (lung, sign), this_side, height in zip(P.sides(), (~left, left), heights, strict=True):
        rows = np.flatnonzero(present & (both | this_side))
        if rows.size:
            fluid = _pleural_fluid(lung.take(rows), F.X[rows] * sign, F.Y[rows],
                                   _drawn(config.effusion_height, height[rows]),
                                   _drawn(config.effusion_density, severities.effusion_density[rows]),
                                   _col(severities.effusion_meniscus[rows]))
            fill[rows] = np.maximum(fill[rows], fluid)
    return fill


def _pleural_fluid(lung: _LungShape, u: np.ndarray, y: np.ndarray, height: np.ndarray, density: np.ndarray,
                   meniscus: np.ndarray) -> np.ndarray:
    """Fraction of lung air one base's fluid replaces, on its own side of the midline (``u`` > 0): ``density``
    below a meniscus that stands ``height`` (a fraction of the lung's height) above the costophrenic angle at
    the chest wall and dips medially (by more, and with a softer edge, for larger ``meniscus``), so the
    costophrenic angle blunts and the dome hides."""
    apex, cp = lung.apex_y, lung.costophrenic_y
    medial, lateral = lung.lung_medial, lung.lung_lateral
    dip = (0.05 + 0.15 * meniscus) * height * (cp - apex) + 0.01
    v = _sat((u - medial) * (1.0 / (lateral - medial)))
    surface = (cp - height * (cp - apex)) + dip * (1.0 - v * v * v)
    inv_fade = 1.0 / (0.02 + 0.02 * meniscus)
    fluid = _sat(y * inv_fade - surface * inv_fade)
    fluid *= density * (u > 0)
    return fluid


def _consolidation(P: _Params, F: _Frame, present: np.ndarray, severities: _Severities, blobs: np.ndarray,
                   config: PhantomConfig) -> np.ndarray:
    """Fraction of lung air a consolidation replaces (B, H, W), zero without one: a lobulated patch of random
    radius anywhere in one lung, between its borders and kept above the diaphragm."""
    fill = F.zeros(np.float32)
    rows = np.flatnonzero(present)
    if rows.size == 0:
        return fill
    left = (severities.consolidation_side[rows] >= 0.5).reshape(-1, 1, 1)
    lung = P.lung_on(left, rows)
    radius = _drawn(config.consolidation_radius, severities.consolidation_radius[rows])
    t = _col(0.12 + 0.58 * severities.consolidation_height[rows])
    medial, lateral = lung.span(t)
    u = medial + _col(0.3 + 0.55 * severities.consolidation_lateral[rows]) * (lateral - medial)
    y = np.minimum(lung.level(t), lung.diaphragm(u) - 0.5 * radius)
    sign = _side_sign(left)
    patch = _lobulated_patch(F.X[rows], F.Y[rows], sign * u, y, radius, blobs[rows].astype(np.float32))
    patch *= _drawn(config.consolidation_contrast, severities.consolidation_contrast[rows]) * (F.X[rows] * sign > 0)
    fill[rows] = patch
    return fill


def _lobulated_patch(X: np.ndarray, Y: np.ndarray, x: np.ndarray, y: np.ndarray, radius: np.ndarray,
                     blobs: np.ndarray) -> np.ndarray:
    """A lobulated, patchy opacity in [0, 1] (B', H, W) about (``x``, ``y``) (B', 1, 1): Gaussian blobs of
    weights ``_BLOB_WEIGHTS`` (the negative ones smaller: holes) scattered and sized by ``blobs`` (B', n, 3)
    normals, summed separably and thresholded. Exponents are clamped so no value goes subnormal."""
    r = radius[:, :, 0]
    bx = x[:, :, 0] + 0.6 * r * blobs[:, :, 0]                                  # (B', n)
    by = y[:, :, 0] + 0.6 * r * blobs[:, :, 1]
    sigma = r * (0.6 + 0.12 * np.clip(blobs[:, :, 2], -2.0, 2.0))
    sigma[:, _BLOB_WEIGHTS < 0] *= 0.5
    gx = np.exp(np.maximum(-0.5 * ((X - bx[:, :, None]) / sigma[:, :, None]) ** 2, -30.0))    # (B', n, W)
    gy = np.exp(np.maximum(-0.5 * ((Y[:, :, 0][:, None, :] - by[:, :, None]) / sigma[:, :, None]) ** 2,
                           -30.0)) * _BLOB_WEIGHTS[:, None]                                    # (B', n, H)
    field = gy[:, 0, :, None] * gx[:, 0, None, :]
    for j in range(1, len(_BLOB_WEIGHTS)):
        field += gy[:, j, :, None] * gx[:, j, None, :]
    field -= 0.45
    field *= 4.0
    return _sat(field)


# ---- bones ------------------------------------------------------------------------------------


def _bones(P: _Params, F: _Frame) -> np.ndarray:
    """Bone attenuation (B, H, W): the spine, the posterior and the anterior ribs and the clavicles, times the
    patient's bone density."""
    bone = _spine(P, F)
    for ribs in _ribs(P, F):
        bone += ribs
    bone += _clavicles(P, F)
    bone *= P.bone_density
    return bone


def _spine(P: _Params, F: _Frame) -> np.ndarray:
    """The spine's relative thickness: a round column on the midline, thinner at each vertebra's end plates."""
    phase = F.Y * (1.0 / P.vertebra_period) + P.vertebra_phase
    phase -= np.rint(phase)
    return _chord(F.X * (1.0 / P.spine_half_width)) * (0.63 - 0.48 * phase * phase)


def _ribs(P: _Params, F: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """Relative thickness of the 10 posterior ribs (arching up and out from the spine) and of the 6 fainter
    anterior ribs (from the lateral wall, sloping down towards the midline), within the rib cage: out to just
    beyond the lateral lung borders, faint over the mediastinum, fading below the costophrenic angle."""
    lateral = np.where(F.X < 0, P.right_lung.lung_lateral, P.left_lung.lung_lateral)
    base = P.rib_curvature * P.rib_peak * P.rib_peak
    cage = _sat((lateral + 0.035 - F.U) * 50.0) * (0.4 + 0.6 * _sat((F.U - 0.04) * 12.5))
    fade = _sat((P.right_lung.costophrenic_y + 0.04 - F.Y) * 25.0)
    posterior = P.rib_curvature * (F.U - P.rib_peak) ** 2 - base
    anterior = P.rib_curvature * (lateral - P.rib_peak) ** 2 - base + P.anterior_slope * (lateral - F.U)
    return (_rib_set(P, F, posterior, 0.22 * cage, 10, fade),
            _rib_set(P, F, anterior, (0.4 * 0.22) * cage * _sat((F.U - 0.09) * 12.0), 6, fade))


def _rib_set(P: _Params, F: _Frame, curve: np.ndarray, strength: np.ndarray, n_ribs: int,
             fade: np.ndarray) -> np.ndarray:
    """``n_ribs`` round ribs ``rib_width`` thick, ``rib_spacing`` apart from ``rib_start_y`` down, each
    following ``curve`` (its height against distance from the midline)."""
    k = (F.Y - P.rib_start_y) * (1.0 / P.rib_spacing) - curve * (1.0 / P.rib_spacing)   # rib index, continuous
    nearest = np.rint(np.clip(k, 0.0, n_ribs - 1.0))
    offset = np.subtract(k, nearest, out=nearest)
    offset *= P.rib_spacing / P.rib_width
    ribs = _chord(offset)
    ribs *= strength
    ribs *= fade
    return ribs


def _clavicles(P: _Params, F: _Frame) -> np.ndarray:
    """The clavicles' relative thickness: round bars from beside the midline out towards the shoulders,
    rising laterally, their outer ends curving down again."""
    cu = F.U - 0.03
    yc = P.clavicle_y - P.clavicle_slope * cu + 0.8 * (cu - 0.15) ** 2 - 0.018
    clavicles = _chord(F.Y * (1.0 / 0.018) - yc * (1.0 / 0.018))
    clavicles *= 0.7 * _sat(cu * 40.0) * _sat((0.36 - cu) * 30.0)
    return clavicles


# ---- abdomen ----------------------------------------------------------------------------------


def _gastric_bubble(P: _Params, F: _Frame) -> np.ndarray:
    """Attenuation the stomach's gas bubble removes under the left hemidiaphragm (B, H, W): a flattened ball,
    none where the patient's ``bubble_radius`` is 0."""
    radius = np.maximum(P.bubble_radius, 1e-3)
    bx = (F.X - P.bubble_x) * (1.0 / radius)
    by = (F.Y - P.bubble_y) * (1.0 / (0.7 * radius))
    gas = (1.0 - by * by) - bx * bx
    np.sqrt(np.maximum(gas, 0.0, out=gas), out=gas)
    gas *= np.where(P.bubble_radius > 0, np.float32(0.25), np.float32(0.0))
    return gas


# ---- pneumothorax (image frame) ---------------------------------------------------------------


def _pneumothorax_masks(P: _Params, F: _Frame, warp: _Warp, lungs: _LungFields, heart_mask: np.ndarray,
                        present: np.ndarray, severities: _Severities, config: PhantomConfig) -> np.ndarray:
    """Pneumothorax masks in the image frame (B, H, W) bool, empty without one: the pleural air of one lung,
    drawn in the pre frame and warped by nearest neighbour; a rim so thin that it aliases away is thickened by
    a pixel."""
    masks = F.zeros(bool)
    rows = np.flatnonzero(present)
    if rows.size == 0:
        return masks
    air = _pleural_air(P, F, lungs, _visible(lungs.mask[rows], heart_mask[rows]) > 0.5, rows,
                       left=(severities.pneumothorax_side[rows] >= 0.5).reshape(-1, 1, 1),
                       width=_drawn(config.pneumothorax_width, severities.pneumothorax_width[rows]),
                       anchor=_col(0.55 + 0.4 * severities.pneumothorax_anchor[rows]))
    masks[rows] = warp.nearest(air, rows)
    lost = np.flatnonzero(~masks[rows].any(axis=(1, 2)) & air.any(axis=(1, 2)))
    if lost.size:
        masks[rows[lost]] = warp.nearest(_dilate(air[lost]), rows[lost])
    return masks


def _pleural_air(P: _Params, F: _Frame, lungs: _LungFields, visible: np.ndarray, rows: np.ndarray,
                 left: np.ndarray, width: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Pre-frame masks of pleural air (B', H, W) for studies ``rows``: the part of one visible lung
    (``visible``, those rows) that the lung, collapsed by the fraction ``width`` towards its lower medial
    corner, no longer fills: a rim at the apex and along the lateral wall. Where a tiny image leaves the rim
    without a pixel the lung collapses further, until it covers one."""
    lung = P.lung_on(left, rows)
    u = F.X[rows] * _side_sign(left)
    y = F.Y[rows]
    own = np.where(left, lungs.inside[1][rows], lungs.inside[0][rows]) > 0
    own &= visible
    anchor_y = lung.level(anchor)
    taper = _sat((anchor_y + 0.1 - y) * 10.0)
    air = np.zeros_like(own)
    todo = np.arange(len(rows))
    fraction = width.copy()
    for _attempt in range(8):
        collapsed = _collapsed_lung(lung.take(todo), u[todo], y[todo], anchor_y[todo], taper[todo], fraction[todo])
        air[todo] = own[todo] & ~collapsed
        empty = ~air[todo].any(axis=(1, 2)) & own[todo].any(axis=(1, 2))
        todo = todo[empty]
        if todo.size == 0:
            break
        fraction[todo] = np.minimum(fraction[todo] * 1.5 + 0.02, 0.7)
    return air


def _collapsed_lung(lung: _LungShape, u: np.ndarray, y: np.ndarray, anchor_y: np.ndarray, taper: np.ndarray,
                    fraction: np.ndarray) -> np.ndarray:
    """Where the lung still is once collapsed by ``fraction``: each point is moved away from the lung's lower
    medial corner (down onto ``anchor_y`` from above it, out from the mediastinum by ``taper``) and tested
    against the normal lung."""
    medial = lung.lung_medial + 0.02
    omega = fraction / (1.0 - fraction)
    u2 = medial + (u - medial) * (1.0 + omega * taper)
    y2 = np.where(y < anchor_y, anchor_y + (y - anchor_y) * (1.0 + omega), y)
    return lung.inside(u2, y2) > 0


def _draw_pneumothorax(attenuation: np.ndarray, masks: np.ndarray, warp: _Warp, lungs: _LungFields,
                       markings: np.ndarray, severities: _Severities, config: PhantomConfig) -> None:
    """Draw each mask's pneumothorax into the image-frame ``attenuation``, in place: pleural air has no lung
    markings and removes some attenuation; the visceral pleural line, one pixel along the mask's border inside
    the lung, adds some."""
    rows = np.flatnonzero(masks.any(axis=(1, 2)))
    if rows.size == 0:
        return
    air = masks[rows]
    line = _dilate(air)
    line &= ~air
    line &= warp.nearest(lungs.mask[rows], rows) > 0.5
    removed = warp.bilinear(markings[rows], rows)
    removed += _drawn(config.pneumothorax_contrast, severities.pneumothorax_contrast[rows])
    removed *= air
    attenuation[rows] += line * _drawn(config.pleural_line, severities.pleural_line[rows]) - removed


# ---- exposure ---------------------------------------------------------------------------------


def _radiograph(attenuation: np.ndarray, drawn: _BatchDraws, config: PhantomConfig) -> np.ndarray:
    """The detector's image of the image-frame ``attenuation`` (used up): the tone curve
    ``1 - exp(-_TONE A)`` at each study's exposure, signal-dependent (quantum-like) noise, the imaging chain's
    blur, clipped to [0, 1]."""
    img = np.maximum(attenuation, 0.0, out=attenuation)
    img *= _col(-_TONE * np.exp(drawn.jitter.exposure * config.exposure_jitter))
    np.exp(img, out=img)
    np.subtract(1.0, img, out=img)
    if config.noise_sigma > 0:
        noise = drawn.noise * np.float32(config.noise_sigma / math.sqrt(0.6))
        noise *= np.sqrt(img + 0.1)
        img += noise
    if config.blur_sigma > 0:
        img = _blur(img, config.blur_sigma * int(config.size) / 64.0)
    _sat(img)
    return img.astype(np.float32, copy=False)


# ----------------------------------------------------------------------------------------------
# geometry

_FIELD_TYPES = get_type_hints(Anatomy)
_SCALAR_FIELDS = tuple(name for name, kind in _FIELD_TYPES.items() if kind is float)
_PAIRED_FIELDS = tuple(name for name, kind in _FIELD_TYPES.items() if kind == tuple[float, float])


class _Params:
    """The anatomies of a batch as (B, 1, 1) float32 arrays: an attribute per scalar field of ``Anatomy``
    (``P.heart_x``, ...), its per-side fields as ``right_lung`` and ``left_lung`` (``_LungShape``)."""

    def __init__(self, anatomies: Sequence[Anatomy]) -> None:
        table = np.array([[getattr(a, name) for name in _SCALAR_FIELDS]
                          + [v for name in _PAIRED_FIELDS for v in getattr(a, name)] for a in anatomies], np.float32)
        table = table.T.reshape(table.shape[1], -1, 1, 1)
        for name, column in zip(_SCALAR_FIELDS, table[: len(_SCALAR_FIELDS)], strict=True):
            setattr(self, name, column)
        paired = table[len(_SCALAR_FIELDS):]
        self.right_lung = _LungShape(**dict(zip(_PAIRED_FIELDS, paired[0::2], strict=True)))
        self.left_lung = _LungShape(**dict(zip(_PAIRED_FIELDS, paired[1::2], strict=True)))

    def sides(self) -> tuple[tuple[_LungShape, np.float32], tuple[_LungShape, np.float32]]:
        """Each lung with the sign of X on its side: the right lung is on the image left."""
        return (self.right_lung, np.float32(-1.0)), (self.left_lung, np.float32(1.0))

    def lung_on(self, left: np.ndarray, rows: np.ndarray) -> _LungShape:
        """For the studies ``rows``, the left lung where ``left`` (B', 1, 1) bool, else the right one."""
        return _LungShape.choose(left, self.right_lung.take(rows), self.left_lung.take(rows))


class _Frame:
    """Pre-frame coordinates of a batch in patient units: X (B, 1, W), Y (B, H, 1), U = |X| (distance from
    the midline), the pixel pitch px (B, 1, 1); and each study's rotation into the image frame, angle (B,)."""

    def __init__(self, P: _Params, size: int, shift_x: np.ndarray, shift_y: np.ndarray, rotation: np.ndarray,
                 log_scale: np.ndarray) -> None:
        axis = _axis(size)
        inv = _col(1.0 / (P.zoom.ravel() * np.exp(log_scale)))
        self.X = (axis.reshape(1, 1, -1) - _col(P.offset_x.ravel() + shift_x)) * inv
        self.Y = (axis.reshape(1, -1, 1) - _col(P.offset_y.ravel() + shift_y)) * inv
        self.U = np.abs(self.X)
        self.px = inv * np.float32(1.0 / size)
        self.angle = P.tilt.ravel().astype(np.float64) + rotation
        self.size = size

    @classmethod
    def jittered(cls, P: _Params, jitter: _Jitter, config: PhantomConfig) -> _Frame:
        """The frame of studies positioned with their drawn jitter (shift, rotation, scale)."""
        return cls(P, int(config.size), jitter.shift_x * config.jitter_shift, jitter.shift_y * config.jitter_shift,
                   np.radians(jitter.rotation * config.jitter_rotation), jitter.log_scale * config.jitter_scale)

    @classmethod
    def still(cls, P: _Params, size: int) -> _Frame:
        """The frame of the patients' own placement (zoom, offset, tilt), without jitter."""
        zero = np.zeros(P.zoom.shape[0])
        return cls(P, size, zero, zero, zero, zero)

    def zeros(self, dtype: type) -> np.ndarray:
        """A blank (B, H, W) stack."""
        return np.zeros((self.angle.size, self.size, self.size), dtype)


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

    def _index(self, rows: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------
# pixel helpers


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


def _chord(d: np.ndarray) -> np.ndarray:
    """sqrt(1 - d^2), 0 where |d| > 1: the thickness of a round bar of unit radius at distance ``d`` from its
    axis. In place (d must be a fresh temporary)."""
    d *= d
    np.subtract(1.0, d, out=d)
    return np.sqrt(np.maximum(d, 0.0, out=d), out=d)


def _col(v: np.ndarray) -> np.ndarray:
    """Per-study values (B,) as a float32 (B, 1, 1) column that broadcasts over images."""
    return np.asarray(v, np.float32).reshape(-1, 1, 1)


def _between(lo_hi: tuple[float, float], v: np.ndarray) -> np.ndarray:
    """The point a fraction ``v`` of the way through the interval ``lo_hi``, float32."""
    return (lo_hi[0] + (lo_hi[1] - lo_hi[0]) * np.asarray(v)).astype(np.float32)


def _drawn(lo_hi: tuple[float, float], v: np.ndarray) -> np.ndarray:
    """A per-study severity drawn uniformly from ``lo_hi`` by the uniform draws ``v`` (B,), as a (B, 1, 1) column."""
    return _col(_between(lo_hi, v))


def _side_sign(left: np.ndarray) -> np.ndarray:
    """The sign of X on each study's chosen side: +1 where ``left`` (the image right), else -1."""
    return np.where(left, np.float32(1.0), np.float32(-1.0))


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


def _dilate(mask: np.ndarray) -> np.ndarray:
    """4-neighbour dilation of each (H, W) image of a (B, H, W) bool stack."""
    out = mask.copy()
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    out[:, :, 1:] |= mask[:, :, :-1]
    out[:, :, :-1] |= mask[:, :, 1:]
    return out
