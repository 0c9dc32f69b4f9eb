"""Decode and resize every image once to the task resolution; keep the result in the run's cache as a memory map.

Two cache stages. `pixels`: the decoded images in chunks of `CHUNK` studies, each a content-addressed cache entry
(written to a temp folder, renamed into place with a hash marker), so an interrupted preprocessing resumes at the
last finished chunk and a changed file only redoes its own chunk; images are kept as uint16 (every source here has
at most 16 bits), masks as uint8. `pixel_map`: one set's pixels as the float32 array its consumers read, written
once from the chunks and opened read-only with `mmap_mode="r"`, so that a 200,000-image CheXpert split costs page
cache rather than RAM and training reads only the batches it draws; the constant images (left out of a set) are
found while it is written and recorded beside it, so loading never reads the pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrbench.cache import Cache, content_key

from .decode import read_image, resize, resize_mask
from .studies import Study, file_identity

log = logging.getLogger(__name__)

PIXELS_STAGE = ("pixels", "1")
MAP_STAGE = ("pixel_map", "1")
CHUNK = 512
IMAGES, MASKS, CONSTANT = "images.npy", "masks.npy", "constant.npy"


@dataclass(frozen=True)
class Pixels:
    """A set's pixels with its constant images (one value everywhere: nothing to learn or score) left out."""

    images: np.ndarray
    """(kept, H, W) float32 in [0, 1]; a read-only memory map when it comes from the cache."""
    masks: np.ndarray | None
    """(kept, H, W) bool, or None."""
    constant: np.ndarray
    """(N,) bool over the studies asked for: which were left out."""


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


def load_pixels(studies: list[Study], size: int, *, with_masks: bool, cache_dir: Path | None) -> Pixels:
    """The studies' images (float32 in [0, 1]) and masks, constant images left out: a read-only memory map of the
    cache's `pixel_map` entry (written first if missing), or without a cache arrays decoded into memory."""
    if cache_dir is None:
        images, masks = preprocess(studies, size, with_masks=with_masks)
        unit = _unit(images)
        constant = _constant(unit)
        return Pixels(unit[~constant], None if masks is None else masks[~constant].astype(bool), constant)
    cache = Cache(cache_dir)
    chunks = [studies[start: start + CHUNK] for start in range(0, len(studies), CHUNK)]
    keys = [_chunk_key(chunk, size, with_masks) for chunk in chunks]
    key = content_key(*MAP_STAGE, {"size": size, "masks": with_masks, "chunks": keys})
    if not cache.is_complete(MAP_STAGE[0], key):
        _write_map(cache, key, chunks, keys, size, with_masks)
    return _open_map(cache.path(MAP_STAGE[0], key), with_masks)


def _unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 65535.0


def _constant(unit: np.ndarray) -> np.ndarray:
    return unit.min(axis=(1, 2)) == unit.max(axis=(1, 2))


def _chunk_key(studies: list[Study], size: int, with_masks: bool) -> str:
    return content_key(*PIXELS_STAGE, {"size": size, "masks": with_masks,
                                      "files": "\n".join(file_identity(s) for s in studies)})


def _chunk(cache: Cache, key: str, studies: list[Study], size: int,
           with_masks: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """One chunk's uint16 images and uint8 masks, decoded and stored first if the cache lacks them."""
    if not cache.is_complete(PIXELS_STAGE[0], key):
        images, masks = preprocess(studies, size, with_masks=with_masks)
        with cache.writing(PIXELS_STAGE[0], key, {"size": size, "n": len(studies)}) as out:
            np.save(out / IMAGES, images)
            if masks is not None:
                np.save(out / MASKS, masks)
    entry = cache.path(PIXELS_STAGE[0], key)
    return np.load(entry / IMAGES), (np.load(entry / MASKS) if with_masks else None)


def _write_map(cache: Cache, key: str, chunks: list[list[Study]], keys: list[str], size: int,
               with_masks: bool) -> None:
    """Two passes over the chunks, one in memory at a time: the first decodes what is missing and finds the constant
    images (the map's row count), the second fills the map in study order."""
    constant = np.zeros(0, bool)
    for number, (chunk, chunk_key) in enumerate(zip(chunks, keys, strict=True)):
        constant = np.concatenate([constant, _constant(_unit(_chunk(cache, chunk_key, chunk, size, with_masks)[0]))])
        if len(chunks) > 1:
            log.info("pixels: chunk %d/%d ready", number + 1, len(chunks))
    shape = (int((~constant).sum()), size, size)
    with cache.writing(MAP_STAGE[0], key, {"size": size, "n": len(constant), "kept": shape[0]}) as out:
        np.save(out / CONSTANT, constant)
        images = np.lib.format.open_memmap(out / IMAGES, mode="w+", dtype=np.float32, shape=shape)
        masks = np.lib.format.open_memmap(out / MASKS, mode="w+", dtype=bool, shape=shape) if with_masks else None
        row = 0
        for start, chunk, chunk_key in zip(range(0, len(constant), CHUNK), chunks, keys, strict=True):
            chunk_images, chunk_masks = _chunk(cache, chunk_key, chunk, size, with_masks)
            kept = ~constant[start: start + len(chunk)]
            images[row: row + kept.sum()] = _unit(chunk_images)[kept]
            if masks is not None:
                masks[row: row + kept.sum()] = chunk_masks[kept].astype(bool)
            row += int(kept.sum())
        for array in (images, masks):
            if array is not None:
                array.flush()
        del images, masks  # closes the maps before the cache hashes and renames the files


def _open_map(entry: Path, with_masks: bool) -> Pixels:
    return Pixels(np.load(entry / IMAGES, mmap_mode="r"),
                  np.load(entry / MASKS, mmap_mode="r") if with_masks else None, np.load(entry / CONSTANT))
