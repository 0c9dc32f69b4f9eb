"""Any chest X-ray file to one greyscale float32 image in [0, 1], and resizing to the task resolution.

JPEG/PNG go through Pillow (greyscale, RGB, RGBA, 16-bit; no other format, so that no other decoder sees a
crafted file); DICOM through `dicom.decode_dicom`. Files are read through `confined` (no links, at most
`MAX_FILE_BYTES`), and an image claiming more than `MAX_PIXELS` is refused before it is decoded.
Every failure becomes a `DataError` that names the file and the metadata row it came from.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cxrbench.errors import DataError

from .confined import MAX_PIXELS, check_pixels, read_bytes
from .dicom import decode_dicom

DICOM_SUFFIXES = {".dcm", ".dicom"}
IMAGE_FORMATS = ("JPEG", "PNG")


def read_image(path: Path, where: str) -> np.ndarray:
    """The file at `path` as (H, W) float32 in [0, 1]; `where` says which row asked for it (for errors)."""
    return decode_image(read_bytes(path, where, "image file"), path, where)


def decode_image(data: bytes, path: Path, where: str) -> np.ndarray:
    """A file's bytes (named `path`: its suffix says DICOM or not) as (H, W) float32 in [0, 1]."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return decode_dicom(data, path, where)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            check_pixels(image.width * image.height, path, where)
            image.load()
            return _grey_unit(image)
    except UnidentifiedImageError:
        raise DataError(f"{where}: cannot read image {path}: not a JPEG or PNG file (the formats read besides "
                        "DICOM)") from None
    except Image.DecompressionBombError as error:
        raise DataError(f"{where}: image {path} has more than {MAX_PIXELS:,} pixels ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{where}: cannot read image {path}: {error}") from None


def _grey_unit(image) -> np.ndarray:
    """Pillow image of any common mode to grey [0, 1]; alpha is dropped, colour becomes BT.601 luma."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        return np.clip(pixels / top, 0, 1)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float32)
        return (pixels - pixels.min()) / max(float(np.ptp(pixels)), 1e-12)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGB")
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Area-average (box filter) resize to size x size: anti-aliased, aspect not kept (the lungs stay whole)."""
    from PIL import Image

    if pixels.shape == (size, size):
        return pixels.astype(np.float32)
    resized = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F").resize(
        (size, size), Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A full-resolution boolean mask at the task resolution: a pixel is in if half its area is."""
    return resize(mask.astype(np.float32), size) >= 0.5
