"""A fabricated CheXpert copy of the real layout: CheXpert's published train.csv rows with generated JPEGs.

The table is the first rows of the train.csv torchxrayvision ships (223,414 rows: the real columns, values, patients
and `CheXpert-v1.0-small/train/patientNNNNN/studyN/viewN_frontal.jpg` paths), so the loader meets the shape it meets
on a registered copy; each row's image is a small greyscale JPEG of its own (a gradient that differs per row), so
that an image out of place is seen. Used by tests/test_pixel_map.py and the benchmarks of tests/benchmarks/.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .real_data import xrv_data

FOLDER = "chexpert"
TABLE = "CheXpert-v1.0-small/train.csv"


def fake_chexpert(root: Path, rows: int | None = None, *, size: int = 64) -> Path:
    """Write `<root>/chexpert/` with the first `rows` rows of CheXpert's train.csv (None: all of them) and a
    `size` x `size` JPEG at every row's `Path`; returns the table it wrote."""
    table = pd.read_csv(xrv_data("chexpert_train.csv.gz"), dtype=str, keep_default_na=False, nrows=rows)
    folder = root / FOLDER
    grid = np.add.outer(np.arange(size), 2 * np.arange(size))
    made: set[Path] = set()
    for index, relative in enumerate(table["Path"]):
        path = folder / relative
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(jpeg(((grid * (1 + index % 5) + index) % 251).astype(np.uint8)))
    csv = folder / TABLE
    csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv, index=False)
    return csv


def jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(out, format="JPEG", quality=90)
    return out.getvalue()
