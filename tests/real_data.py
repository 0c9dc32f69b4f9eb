"""Helpers for tests on the real copies in ../shared/data: find them, or build small copies and broken ones."""

from __future__ import annotations

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


def place(source: Path, target: Path) -> None:
    """A copy of one shared file in a test's own data root (the loaders refuse links; the copies are small)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def covid_subset(root: Path, rows: int) -> Path:
    """A data root holding `rows` rows of the COVID lungs copy, JPEGs and PNGs alike (images and masks copied)."""
    source = shared_dataset("covid-lungs")
    folder = root / "covid-lungs"
    table = pd.read_csv(source / "metadata.csv", dtype=str, keep_default_na=False)
    png = table["image"].str.endswith(".png")
    table = pd.concat([table[~png].head(rows - rows // 2), table[png].head(rows // 2)], ignore_index=True)
    for column in ("image", "mask"):
        for relative in table[column]:
            place(source / relative, folder / relative)
    table.to_csv(folder / "metadata.csv", index=False)
    return folder


def kermany_subset(root: Path, per_class: int) -> Path:
    """A data root with the first `per_class` images of each class, in the published folder layout."""
    source = shared_dataset("pneumonia-kermany")
    for label in ("NORMAL", "PNEUMONIA"):
        for path in sorted((source / "train" / label).iterdir())[:per_class]:
            place(path, root / "pneumonia-kermany" / "train" / label / path.name)
    return root / "pneumonia-kermany"


def xrv_data(name: str) -> Path:
    """A metadata file shipped in the installed torchxrayvision package's data/ folder."""
    import torchxrayvision

    path = Path(torchxrayvision.__file__).parent / "data" / name
    if not path.is_file():
        pytest.skip(f"torchxrayvision does not ship {name} in this version")
    return path


def write_dicom(path: Path, pixels, *, patient_id: str = "P0", bits_stored: int = 12,
                photometric: str = "MONOCHROME2", window: tuple[float, float] | None = None,
                sex: str | None = None, age: str | None = None) -> Path:
    """A minimal valid DICOM (explicit VR little endian, uint16 pixels) with the tags the reader uses; PatientSex and
    PatientAge only where given."""
    import numpy as np
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.PatientID = patient_id
    if sex is not None:
        dataset.PatientSex = sex
    if age is not None:
        dataset.PatientAge = age
    dataset.Modality = "CR"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = 0
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
    dataset.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def gradient(size: int, seed: int):
    """A smooth image with some noise: resizing it is meaningful, and every image differs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    return ((0.3 + 0.5 * x * y + 0.1 * rng.random((size, size))) * 4000).astype(np.uint16)
