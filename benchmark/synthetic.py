"""A synthetic set on disk: one 16-bit PNG per image, its mask where conditioned on one, a manifest, a grid.

PNG so that a person can open any image; 16 bits so that storing does not quantise what the
downstream model sees; the manifest records the condition, seed, generator revision and file hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from .conditions import Condition
from .errors import DataError
from .samples import SampleSet

MANIFEST = "manifest.json"
GRID = "grid.png"


class SyntheticEntry(BaseModel):
    file: str
    sha256: str
    mask_file: str | None = None
    condition: Condition


class SyntheticManifest(BaseModel):
    generator: str
    generator_revision: str
    task: str
    seed: int
    entries: list[SyntheticEntry]


def _png16(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16))


def write_synthetic_set(directory: Path, images: np.ndarray, conditions: list[Condition], *, generator: str,
                        revision: str, task: str, seed: int) -> None:
    (directory / "images").mkdir(parents=True)
    entries = []
    for i, (image, condition) in enumerate(zip(images, conditions, strict=True)):
        name = f"images/{i:06d}.png"
        _png16(image).save(directory / name)
        mask_file = None
        if condition.kind == "mask":
            mask_file = f"images/{i:06d}_mask.png"
            Image.fromarray(condition.mask.astype(np.uint8) * 255).save(directory / mask_file)
        digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
        entries.append(SyntheticEntry(file=name, sha256=digest, mask_file=mask_file, condition=condition))
    manifest = SyntheticManifest(generator=generator, generator_revision=revision, task=task, seed=seed,
                                 entries=entries)
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=1))
    write_grid(directory / GRID, images, conditions)


def read_synthetic_set(directory: Path, label_names: list[str]) -> SampleSet:
    """The set as training rows: images from the PNGs, labels and masks from the conditions asked for."""
    manifest = SyntheticManifest.model_validate_json((directory / MANIFEST).read_text())
    images, labels, masks = [], [], []
    for entry in manifest.entries:
        image = np.asarray(Image.open(directory / entry.file), dtype=np.float32) / 65535.0
        images.append(image)
        try:
            labels.append([entry.condition.labels[name] for name in label_names])
        except KeyError as missing:
            raise DataError(f"{directory / MANIFEST}: entry {entry.file} has no label {missing}") from None
        masks.append(entry.condition.mask if entry.condition.kind == "mask" else None)
    if not images:
        raise DataError(f"{directory / MANIFEST}: the synthetic set is empty")
    ids = np.array([f"synthetic/{manifest.generator}/{manifest.seed}/{i}" for i in range(len(images))])
    return SampleSet(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int8),
        masks=None if any(m is None for m in masks) else np.stack(masks),
        patient_ids=ids, sample_ids=ids,
    )


def write_grid(path: Path, images: np.ndarray, conditions: list[Condition], *, per_row: int = 8,
               max_images: int = 32) -> None:
    """A contact sheet ordered by condition (labels, then mask presence), mask outlines in red."""
    from scipy.ndimage import binary_erosion

    order = sorted(range(len(images)), key=lambda i: json.dumps(conditions[i].labels, sort_keys=True))
    chosen = _spread(order, max_images)
    size = images.shape[1]
    rows = (len(chosen) + per_row - 1) // per_row
    sheet = np.zeros((rows * (size + 2), per_row * (size + 2), 3), np.uint8)
    for slot, i in enumerate(chosen):
        tile = np.repeat((np.clip(images[i], 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
        if conditions[i].kind == "mask":
            edge = conditions[i].mask & ~binary_erosion(conditions[i].mask)
            tile[edge] = (255, 40, 40)
        r, c = divmod(slot, per_row)
        sheet[r * (size + 2) : r * (size + 2) + size, c * (size + 2) : c * (size + 2) + size] = tile
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(path)


def _spread(order: list[int], k: int) -> list[int]:
    """`k` items evenly spaced through `order`, so every condition group shows up."""
    if len(order) <= k:
        return order
    return [order[int(j * len(order) / k)] for j in range(k)]

