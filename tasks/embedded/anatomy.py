"""One patient's fixed anatomy: its parameters (``Anatomy``) and how they are drawn (``draw_anatomy``),
including the lung-markings texture taken from a fixed bank of branching vessel trees.

Public through ``cxrbench.tasks.embedded.phantom``; every study of a patient reuses its anatomy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = ["Anatomy", "draw_anatomy", "patient_age", "patient_sex"]

_MARKINGS_RES = 64          # texels across the patient box [-0.5, 0.5]^2 of the lung-markings texture


@dataclass(frozen=True, eq=False)
class Anatomy:
    """One patient's fixed anatomy, in normalised patient coordinates (image width 1, origin at the
    image centre, y down). Per-side tuples are ``(patient's right = image left, patient's left = image right)``.
    Picklable; compared by identity (it holds an array)."""

    zoom: float                       # > 1: the patient fills more of the field
    offset_x: float
    offset_y: float
    tilt: float                       # radians
    body_half_width: float
    shoulder_half_width: float
    neck_half_width: float
    shoulder_y: float
    soft_density: float
    air: float                        # fraction of the tissue attenuation the lungs' air removes
    apex_y: tuple[float, float]
    apex_x: tuple[float, float]
    lung_lateral: tuple[float, float]
    lung_medial: tuple[float, float]
    mediastinum_flare: tuple[float, float]   # the lower medial lung border moves out by this much
    costophrenic_y: tuple[float, float]
    dome_y: tuple[float, float]
    dome_x: tuple[float, float]
    heart_x: float
    heart_y: float
    heart_half_width: float
    heart_half_height: float
    heart_tilt: float                 # radians
    heart_density: float
    knob_x: float
    knob_y: float
    knob_radius: float
    trachea_half_width: float
    spine_half_width: float
    bone_density: float
    vertebra_period: float
    vertebra_phase: float
    rib_start_y: float
    rib_spacing: float
    rib_curvature: float
    rib_peak: float
    rib_width: float
    anterior_slope: float
    clavicle_y: float
    clavicle_slope: float
    bubble_radius: float              # 0 = no gastric bubble
    bubble_x: float
    bubble_y: float
    markings: np.ndarray              # (64, 64) float32 lung-markings texture over the patient box [-0.5, 0.5]^2


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy (always the same number of draws from ``rng``)."""
    it = iter(rng.random(64).tolist())

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * next(it)

    apex = u(-0.345, -0.300)
    lat_r = u(0.305, 0.365)
    lat_l = lat_r + u(-0.02, 0.02)
    cp_r = u(0.235, 0.300)
    cp_l = cp_r + u(0.0, 0.03)
    dome_r = u(0.105, 0.165)
    dome_l = dome_r + u(0.02, 0.05)
    med = u(0.045, 0.060)
    med_l = med + u(0.0, 0.01)
    heart_hw = u(0.130, 0.170)
    dome_x_l = u(0.16, 0.21)
    fields = dict(
        zoom=u(0.95, 1.05),
        offset_x=u(-0.015, 0.015),
        offset_y=u(-0.015, 0.015),
        tilt=math.radians(u(-2.0, 2.0)),
        body_half_width=u(0.41, 0.49),
        shoulder_half_width=u(0.50, 0.58),
        neck_half_width=u(0.085, 0.115),
        shoulder_y=u(-0.41, -0.35),
        soft_density=u(0.62, 0.76),
        air=u(0.80, 0.88),
        apex_y=(apex + u(-0.01, 0.01), apex + u(-0.01, 0.01)),
        apex_x=(u(0.13, 0.165), u(0.13, 0.165)),
        lung_lateral=(lat_r, lat_l),
        lung_medial=(med, med_l),
        mediastinum_flare=(u(0.0, 0.02), u(0.01, 0.035)),
        costophrenic_y=(cp_r, cp_l),
        dome_y=(dome_r, dome_l),
        dome_x=(u(0.15, 0.20), dome_x_l),
        heart_x=u(0.05, 0.08),
        heart_y=u(0.10, 0.14),
        heart_half_width=heart_hw,
        heart_half_height=heart_hw * u(0.72, 0.85),
        heart_tilt=math.radians(u(18.0, 32.0)),
        heart_density=u(0.10, 0.16),
        knob_x=med_l + u(-0.005, 0.012),
        knob_y=u(-0.17, -0.13),
        knob_radius=u(0.028, 0.040),
        trachea_half_width=u(0.012, 0.018),
        spine_half_width=u(0.030, 0.040),
        bone_density=u(0.30, 0.42),
        vertebra_period=u(0.055, 0.070),
        vertebra_phase=u(0.0, 1.0),
        rib_start_y=apex + u(-0.03, 0.0),
        rib_spacing=u(0.058, 0.070),
        rib_curvature=u(2.4, 3.4),
        rib_peak=u(0.06, 0.10),
        rib_width=u(0.016, 0.022),
        anterior_slope=u(0.35, 0.55),
        clavicle_y=apex + u(0.04, 0.08),
        clavicle_slope=u(0.30, 0.45),
        bubble_radius=u(0.03, 0.055) * (next(it) < 0.7),
        bubble_x=dome_x_l + u(-0.02, 0.04),
        bubble_y=dome_l + u(0.06, 0.09),
    )
    bank = _markings_bank()
    texture = bank[min(int(next(it) * len(bank)), len(bank) - 1)]
    if next(it) < 0.5:
        texture = texture[:, ::-1]                      # mirror: the two hila swap sides
    fields["markings"] = np.ascontiguousarray(texture * np.float32(u(0.8, 1.2)))
    return Anatomy(**fields)


_SHOULDER_RANGE = (0.50, 0.58)     # shoulder_half_width's draw
_BONE_RANGE = (0.30, 0.42)         # bone_density's draw
_AGE_RANGE = (20.0, 90.0)          # years the bone density range spans, densest youngest


def patient_sex(anatomy: Anatomy) -> str:
    """The patient's sex, read off the draw that shapes the frame: the broader half of the shoulder widths "M".

    Defined after the fact on an existing draw, so that no image changed: the phantom's numbers stay those
    published; findings are drawn independently of the anatomy, so the groups differ in build alone."""
    return "M" if anatomy.shoulder_half_width >= sum(_SHOULDER_RANGE) / 2 else "F"


def patient_age(anatomy: Anatomy) -> float:
    """The patient's age in years, read off bone density (bone loses mineral with age): the densest draw is 20
    years old, the least dense 90, linearly between. Defined after the fact, as `patient_sex`."""
    share = (_BONE_RANGE[1] - anatomy.bone_density) / (_BONE_RANGE[1] - _BONE_RANGE[0])
    return _AGE_RANGE[0] + share * (_AGE_RANGE[1] - _AGE_RANGE[0])


_BANK_SIZE = 128
_BANK_TAG = 0x5EEDCB03


@lru_cache(maxsize=1)
def _markings_bank() -> tuple[np.ndarray, ...]:
    """A fixed bank of lung-markings textures, each from its own fixed seed (never global state); a patient
    takes one, maybe mirrored, with its own gain. Built once per process (~0.1 s)."""
    bank = []
    for i in range(_BANK_SIZE):
        rng = np.random.default_rng(np.random.SeedSequence([_BANK_TAG, i]))
        h = rng.random(4)
        hila = ((-(0.10 + 0.03 * h[0]), -0.06 + 0.06 * h[1]), (0.11 + 0.03 * h[2], -0.07 + 0.06 * h[3]))
        texture = _markings_texture(rng, hila)
        texture.setflags(write=False)
        bank.append(texture)
    return tuple(bank)


def _markings_texture(rng: np.random.Generator, hila: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """Lung markings texture (_MARKINGS_RES, _MARKINGS_RES) over the patient box [-0.5, 0.5]^2: a 5-level
    branching vessel tree from each hilum plus scattered nodules of both signs, splatted and blurred.
    A unit-width vessel peaks near 1; trunks are ~0.9, the finest branches ~0.3. Fixed draw count."""
    res = _MARKINGS_RES
    base = np.array([-1.25, -0.75, -0.25, 0.2, 0.65, 1.05, 1.4])
    n = 2 * base.size
    side = np.repeat([-1.0, 1.0], base.size)
    first = rng.random((3, n))
    ang = np.tile(base, 2) + 0.2 * (first[0] - 0.5)
    px = np.repeat([hila[0][0], hila[1][0]], base.size)
    py = np.repeat([hila[0][1], hila[1][1]], base.size)
    length = (0.06 + 0.03 * first[1]) * np.where(np.tile(base, 2) > 0.5, 1.25, 1.0)
    width = 0.8 + 0.2 * first[2]
    segments = []
    for level in range(5):
        dx = np.cos(ang) * side * length
        dy = np.sin(ang) * length
        segments.append(np.stack([px, py, dx, dy, width * length]))
        r = rng.random((4, 2 * n))       # drawn at every level, used for the next one
        if level == 4:
            break
        px = np.repeat(px + dx, 2)
        py = np.repeat(py + dy, 2)
        ang = np.repeat(ang, 2) + (0.25 + 0.3 * r[0]) * np.tile([-1.0, 1.0], n) + 0.25 * (r[1] - 0.5)
        length = np.repeat(length, 2) * (0.62 + 0.23 * r[2])
        width = np.repeat(width, 2) * (0.68 + 0.14 * r[3])
        side = np.repeat(side, 2)
        n *= 2
    x0, y0, dx, dy, mass = np.concatenate(segments, axis=1)
    steps = np.ceil(np.hypot(dx, dy) * (2.0 * res)).astype(np.intp) + 1     # <= half a texel apart
    seg = np.repeat(np.arange(steps.size), steps)
    t = (np.arange(seg.size) - np.repeat(np.cumsum(steps) - steps, steps) + 0.5) / steps[seg]
    n_dots = 700
    dots = rng.random((3, n_dots))
    x = np.concatenate([x0[seg] + dx[seg] * t, -0.42 + 0.84 * dots[0]])
    y = np.concatenate([y0[seg] + dy[seg] * t, -0.40 + 0.70 * dots[1]])
    w = np.concatenate([(mass / steps)[seg], 0.008 * (dots[2] - 0.5)])
    col = np.clip((x + 0.5) * res - 0.5, 0.0, res - 1.001)
    row = np.clip((y + 0.5) * res - 0.5, 0.0, res - 1.001)
    c0 = col.astype(np.intp)
    r0 = row.astype(np.intp)
    fc = col - c0
    fr = row - r0
    idx = r0 * res + c0
    acc = np.bincount(np.concatenate([idx, idx + 1, idx + res, idx + res + 1]),
                      weights=np.concatenate([w * (1 - fr) * (1 - fc), w * (1 - fr) * fc,
                                              w * fr * (1 - fc), w * fr * fc]),
                      minlength=res * res)
    sigma = 0.8
    tex = ndimage.gaussian_filter(acc.reshape(res, res), sigma, mode="constant")
    tex *= res * math.sqrt(2.0 * math.pi) * sigma
    return tex.astype(np.float32)
