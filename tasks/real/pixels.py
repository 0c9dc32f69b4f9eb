"""Decode and resize every image once to the task resolution; keep the result in the run's cache.

The pixels are stored in chunks of `CHUNK` studies, each a content-addressed cache entry (written
to a temp folder, renamed into place with a hash marker), so an interrupted preprocessing resumes
at the last finished chunk and a changed file only redoes its own chunk. Images are kept as
uint16 (every source here has at most 16 bits), masks as uint8.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cxrbench.cache import Cache, content_key

from .decode import read_image, resize, resize_mask
from .studies import Study, file_identity

log = logging.getLogger(__name__)

PIXELS_STAGE = ("pixels", "1")
CHUNK = 512
IMAGES, MASKS = "images.npy", "masks.npy"


def preprocess(studies: list[Study], size: int, *, with_masks: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Read every study's image (and mask) and resize to size x size: (N, H, W) uint16 and uint8."""
    images = np.empty((len(studies), size, size), dtype=np.uint16)
    masks = np.zeros((len(studies), size, size), dtype=np.uint8) if with_masks else None
    for row, study in enumerate(studies):
        pixels = read_image(study.image, study.where)
        if masks is not None and study.mask is not None:
            masks[row] = resize_mask(study.mask.read(pixels.shape), size)
        images[row] = np.round(np.clip(resize(pixels, size), 0, 1) * 65535)
    return images, masks


def load_pixels(studies: list[Study], size: int, *, with_masks: bool,
                cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, H, W) float32 images in [0, 1] and boolean masks (or None), from the cache where it has them."""
    chunks = [studies[start: start + CHUNK] for start in range(0, len(studies), CHUNK)]
    cache = Cache(cache_dir) if cache_dir is not None else None
    image_parts, mask_parts = [], []
    for number, chunk in enumerate(chunks):
        images, masks = _chunk(chunk, size, with_masks, cache)
        image_parts.append(images)
        mask_parts.append(masks)
        if cache is not None and len(chunks) > 1:
            log.info("pixels: chunk %d/%d ready", number + 1, len(chunks))
    images = np.concatenate(image_parts) if image_parts else np.empty((0, size, size), np.uint16)
    unit = images.astype(np.float32) / 65535.0
    if not with_masks:
        return unit, None
    masks = np.concatenate(mask_parts) if mask_parts else np.empty((0, size, size), np.uint8)
    return unit, masks.astype(bool)


def _chunk(studies: list[Study], size: int, with_masks: bool, cache: Cache | None):
    if cache is None:
        return preprocess(studies, size, with_masks=with_masks)
    key = content_key(*PIXELS_STAGE, {"size": size, "masks": with_masks,
                                      "files": "\n".join(file_identity(s) for s in studies)})
    if not cache.is_complete(PIXELS_STAGE[0], key):
        images, masks = preprocess(studies, size, with_masks=with_masks)
        with cache.writing(PIXELS_STAGE[0], key, {"size": size, "n": len(studies)}) as out:
            np.save(out / IMAGES, images)
            if masks is not None:
                np.save(out / MASKS, masks)
    entry = cache.path(PIXELS_STAGE[0], key)
    return np.load(entry / IMAGES), (np.load(entry / MASKS) if with_masks else None)
