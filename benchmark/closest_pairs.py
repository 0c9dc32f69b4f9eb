"""The closest-pairs figure of an entry: each synthetic image nearest a training image beside that training image.

One row per pair of the generator's pixel-space memorisation result (nearest first: the space where a near-copy is a
copy), synthetic left, training right, 8-bit grey. The figure holds pixels only; its distances are shown as text
beside it (the leaderboard's generator page), so that it renders the same on every machine and `cxrbench validate`
can redraw it from the entry's stored images and CI's own training images and require equal pixels. Only tasks
whose images may be published have one: the training images are in it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from .fidelity.memorisation import ClosestPair

GAP = 4
"""White pixels between the two images of a row and between rows."""
MAX_FIGURE_BYTES = 400_000


def figure_file(task: str, regime: str) -> str:
    """The figure's path inside the entry (a gallery file)."""
    return f"gallery/{task}__{regime}__closest_pairs.png"


def figure_pixels(synthetic: np.ndarray, training: np.ndarray, pairs: list[ClosestPair]) -> np.ndarray:
    """The figure as 8-bit grey pixels: `synthetic` the stored 16-bit images, `training` the regime's real training
    images as floats in [0, 1]."""
    if not pairs:
        raise ValueError("no closest pairs to draw")
    height, width = synthetic.shape[1:]
    rows = []
    for pair in pairs:
        left = np.round(synthetic[pair.synthetic] / 257.0)
        right = np.round(np.clip(training[pair.training], 0, 1) * 255.0)
        rows.append(np.hstack([left, np.full((height, GAP), 255.0), right]))
        rows.append(np.full((GAP, 2 * width + GAP), 255.0))
    return np.vstack(rows[:-1]).astype(np.uint8)


def figure_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    """A stored figure's pixels (8-bit grey); raises ValueError for anything else."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.mode != "L":
                raise ValueError(f"expected an 8-bit grey PNG, got {image.format} {image.mode}")
            return np.asarray(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ValueError(f"not a readable PNG ({error})") from None
