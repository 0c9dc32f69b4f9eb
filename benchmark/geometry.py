"""Geometric transforms shared by the tasks' mask conditions and the classic augmentation baseline.

Affine only, and never a left-right flip: a flip would put a finding on the wrong side of a normal
anatomy (the heart would move to the patient's right).
"""

from __future__ import annotations

import numpy as np

IDENTITY_AFFINE = {"rotate_deg": 0.0, "scale": 1.0, "translate_y": 0.0, "translate_x": 0.0}
"""The affine that moves nothing, in `random_affine`'s parameters."""


def random_affine(rng: np.random.Generator, *, max_rotate_deg: float = 10.0, max_scale: float = 0.1,
                  max_translate: float = 0.06) -> dict[str, float]:
    """Parameters of a small affine: rotation in degrees, isotropic scale, translation as a fraction of size."""
    return {
        "rotate_deg": float(rng.uniform(-max_rotate_deg, max_rotate_deg)),
        "scale": float(rng.uniform(1 - max_scale, 1 + max_scale)),
        "translate_y": float(rng.uniform(-max_translate, max_translate)),
        "translate_x": float(rng.uniform(-max_translate, max_translate)),
    }


def apply_affine(image: np.ndarray, params: dict[str, float], *, nearest: bool) -> np.ndarray:
    """Apply `params` to one (H, W) array with MONAI's Affine; masks use nearest neighbour."""
    from monai.transforms import Affine

    size = image.shape[0]
    transform = Affine(
        rotate_params=np.deg2rad(params["rotate_deg"]),
        scale_params=(params["scale"], params["scale"]),
        translate_params=(params["translate_y"] * size, params["translate_x"] * size),
        mode="nearest" if nearest else "bilinear",
        padding_mode="zeros" if nearest else "border",
        image_only=True,
    )
    out = np.asarray(transform(image[None].astype(np.float32)))[0]
    return out > 0.5 if nearest else np.clip(out, 0.0, 1.0).astype(np.float32)
