"""Helpers for tests on the real copies in ../shared/data: find them, or build small copies and broken ones."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real data copy {folder} is absent (CI has it at ../shared/data)")
    return folder


def link(source: Path, target: Path) -> None:
    """A symlink into the shared copy: tests read real images without copying them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, target)


def covid_subset(root: Path, rows: int) -> Path:
    """A data root holding `rows` rows of the COVID lungs copy, JPEGs and PNGs alike (images and masks linked)."""
    source = shared_dataset("covid-lungs")
    folder = root / "covid-lungs"
    table = pd.read_csv(source / "metadata.csv", dtype=str, keep_default_na=False)
    png = table["image"].str.endswith(".png")
    table = pd.concat([table[~png].head(rows - rows // 2), table[png].head(rows // 2)], ignore_index=True)
    for column in ("image", "mask"):
        for relative in table[column]:
            link(source / relative, folder / relative)
    table.to_csv(folder / "metadata.csv", index=False)
    return folder


def kermany_subset(root: Path, per_class: int) -> Path:
    """A data root with the first `per_class` images of each class, in the published folder layout."""
    source = shared_dataset("pneumonia-kermany")
    for label in ("NORMAL", "PNEUMONIA"):
        for path in sorted((source / "train" / label).iterdir())[:per_class]:
            link(path, root / "pneumonia-kermany" / "train" / label / path.name)
    return root / "pneumonia-kermany"


def replace_with_copy(path: Path) -> None:
    """Turn a symlink into a real file so a test can damage it without touching the shared copy."""
    data = path.read_bytes()
    path.unlink()
    shutil.os.makedirs(path.parent, exist_ok=True)
    path.write_bytes(data)
