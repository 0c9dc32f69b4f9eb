"""A synthetic set on disk: one 16-bit PNG per image, its mask where conditioned on one, a manifest, a grid.

PNG so that a person can open any image; 16 bits so that storing does not quantise what the
downstream model sees; the manifest records the condition, seed, generator revision and file hash.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from .conditions import Condition
from .errors import DataError
from .samples import SYNTHETIC_ID_PREFIX, SampleSet

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
    notes: dict[str, Any] = Field(default_factory=dict,
                                  description="What the generator recorded (e.g. a filter's acceptance rates).")


def to_uint16(images: np.ndarray) -> np.ndarray:
    """The 16-bit values a synthetic set stores: what the downstream model sees, whoever stored the set."""
    return np.round(np.clip(images, 0, 1) * 65535).astype(np.uint16)


def png16_bytes(image: np.ndarray) -> bytes:
    """The image as a 16-bit PNG file's bytes: what is stored, and what its sha256 names."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint16(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_sha256(image: np.ndarray) -> str:
    """The hash the manifest (and reviewer feedback) gives this image."""
    return hashlib.sha256(png16_bytes(image)).hexdigest()


def write_synthetic_set(directory: Path, images: np.ndarray, conditions: list[Condition], *, generator: str,
                        revision: str, task: str, seed: int, notes: dict[str, Any] | None = None) -> None:
    (directory / "images").mkdir(parents=True)
    entries = []
    for i, (image, condition) in enumerate(zip(images, conditions, strict=True)):
        name = f"images/{i:06d}.png"
        encoded = png16_bytes(image)
        (directory / name).write_bytes(encoded)
        mask_file = None
        if condition.kind == "mask":
            mask_file = f"images/{i:06d}_mask.png"
            Image.fromarray(condition.mask.astype(np.uint8) * 255).save(directory / mask_file)
        entries.append(SyntheticEntry(file=name, sha256=hashlib.sha256(encoded).hexdigest(), mask_file=mask_file,
                                      condition=condition))
    manifest = SyntheticManifest(generator=generator, generator_revision=revision, task=task, seed=seed,
                                 entries=entries, notes=notes or {})
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=1))
    write_grid(directory / GRID, images, conditions)


def load_synthetic_set(directory: Path) -> tuple[SyntheticManifest, np.ndarray]:
    """The set's manifest and its images (N, H, W) float32 in [0, 1]: the one reader of a stored set."""
    path = directory / MANIFEST
    try:
        manifest = SyntheticManifest.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no synthetic set here (manifest missing)") from None
    if not manifest.entries:
        raise DataError(f"{path}: the synthetic set is empty")
    images = [np.asarray(Image.open(directory / entry.file), dtype=np.float32) / 65535.0 for entry in manifest.entries]
    return manifest, np.stack(images)


def read_synthetic_set(directory: Path, label_names: list[str]) -> SampleSet:
    """The set as training rows: images from the PNGs, labels and masks from the conditions asked for."""
    manifest, images = load_synthetic_set(directory)
    for entry in manifest.entries:
        missing = [name for name in label_names if name not in entry.condition.labels]
        if missing:
            raise DataError(f"{directory / MANIFEST}: entry {entry.file} has no label {missing[0]!r}")
    ids = np.array([f"{SYNTHETIC_ID_PREFIX}{manifest.generator}/{manifest.seed}/{i}" for i in range(len(images))])
    return training_rows(images, [entry.condition for entry in manifest.entries], label_names, ids)


def training_rows(images: np.ndarray, conditions: list[Condition], label_names: list[str],
                  ids: np.ndarray) -> SampleSet:
    """Images as training rows: each labelled (and masked) with the condition it was made for."""
    masks = [condition.mask if condition.kind == "mask" else None for condition in conditions]
    return SampleSet(
        images=images,
        labels=np.asarray([[c.labels[name] for name in label_names] for c in conditions], dtype=np.int8),
        masks=None if any(m is None for m in masks) else np.stack(masks),
        patient_ids=ids, sample_ids=ids,
    )


def write_grid(path: Path, images: np.ndarray, conditions: list[Condition], *, per_row: int = 8,
               max_images: int = 32) -> None:
    """A contact sheet ordered by condition (labels, then mask presence), mask outlines in red."""
    order = sorted(range(len(images)), key=lambda i: json.dumps(conditions[i].labels, sort_keys=True))
    chosen = _spread(order, max_images)
    size = images.shape[1]
    rows = (len(chosen) + per_row - 1) // per_row
    sheet = np.zeros((rows * (size + 2), per_row * (size + 2), 3), np.uint8)
    for slot, i in enumerate(chosen):
        tile = with_condition(images[i], conditions[i])
        r, c = divmod(slot, per_row)
        sheet[r * (size + 2) : r * (size + 2) + size, c * (size + 2) : c * (size + 2) + size] = tile
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(path)


def with_condition(image: np.ndarray, condition: Condition) -> np.ndarray:
    """The image as 8-bit RGB, with the requested mask's outline in red for a mask condition."""
    from scipy.ndimage import binary_erosion

    tile = np.repeat((np.clip(image, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
    if condition.kind == "mask":
        mask = np.asarray(condition.mask, dtype=bool)
        tile[mask & ~binary_erosion(mask)] = (255, 40, 40)
    return tile


def _spread(order: list[int], k: int) -> list[int]:
    """`k` items evenly spaced through `order`, so every condition group shows up."""
    if len(order) <= k:
        return order
    return [order[int(j * len(order) / k)] for j in range(k)]

