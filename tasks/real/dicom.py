"""DICOM pixels as a radiologist's display would show them: stored bits, VOI LUT/window, MONOCHROME1 inverted."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cxrbench.errors import DataError

from .attributes import Attributes, parse_age, parse_sex
from .confined import check_pixels, open_regular


def decode_dicom(data: bytes, path: Path, where: str) -> np.ndarray:
    """(H, W) float32 in [0, 1], bright = dense (bone), whatever the photometric interpretation.

    A blank image (one value everywhere) comes back as zeros; the loader leaves constant images out."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_voi_lut

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        claimed = [int(dataset.get(tag) or 1) for tag in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel")]
        check_pixels(int(np.prod(claimed)), path, where)
        pixels = dataset.pixel_array
    except (InvalidDicomError, OSError, AttributeError, ValueError, TypeError, KeyError, EOFError) as error:
        raise DataError(f"{where}: cannot read DICOM {path}: {error}") from None
    if pixels.ndim != 2:
        raise DataError(f"{where}: DICOM {path} holds pixel data of shape {pixels.shape}, expected one 2-D image")
    bits = int(getattr(dataset, "BitsStored", 0) or pixels.dtype.itemsize * 8)
    if np.issubdtype(pixels.dtype, np.unsignedinteger):
        pixels = pixels & np.asarray((1 << bits) - 1, dtype=pixels.dtype)  # bits above BitsStored carry no image
    values = np.asarray(apply_voi_lut(pixels, dataset), dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    unit = (values - low) / max(high - low, 1e-12)
    if str(getattr(dataset, "PhotometricInterpretation", "")).upper() == "MONOCHROME1" and high > low:
        unit = 1.0 - unit
    return unit


def read_patient_id(path: Path, where: str) -> str:
    """Only the PatientID tag (no pixels): cheap enough to scan a whole folder with."""
    patient = str(_header(path, where, ["PatientID"]).get("PatientID", "") or "")
    if not patient:
        raise DataError(f"{where}: DICOM {path} has no PatientID, which the patient-level split needs")
    return patient


def read_sex_and_age(path: Path, where: str) -> Attributes:
    """The PatientSex and PatientAge tags (no pixels); an absent or empty tag is unknown, as the standard allows."""
    header = _header(path, where, ["PatientSex", "PatientAge"])
    at = f"{where}: DICOM {path}"
    return (parse_sex(header.get("PatientSex", "") or "", f"{at} tag PatientSex"),
            parse_age(header.get("PatientAge", "") or "", f"{at} tag PatientAge"))


def _header(path: Path, where: str, tags: list[str]):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open_regular(path, where, "DICOM") as handle:
            return pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=tags)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise DataError(f"{where}: cannot read DICOM header of {path}: {error}") from None
