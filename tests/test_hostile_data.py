"""A data root may be crafted or broken: links and paths that leave the dataset folder, bombs, ragged CSVs,
stray files, blank images and empty lung masks are refused, or left out and counted, never read silently."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrbench.errors import DataError
from cxrbench.registry import get_task
from cxrbench.tasks.real import copies
from cxrbench.tasks.real.paper_suite import CHEXPERT_LABELS

from .real_data import gradient, write_dicom

# --- small copies in each dataset's published layout --------------------------------------------------------

def _picture(path: Path, seed: int, *, value: int | None = None, size: int = 48) -> Path:
    """A grey test image (a noisy gradient, or one constant `value`) in the format its suffix names."""
    pixels = np.full((size, size), value, np.uint8) if value is not None else (gradient(size, seed) // 16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _lungs(path: Path, *, inside: int = 255, size: int = 48) -> Path:
    mask = np.zeros((size, size), np.uint8)
    mask[8:40, 6:20] = mask[8:40, 28:42] = inside
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    rows[row][header.index(column)] = value
    _write_csv(path, header, rows)


def kermany_copy(folder: Path) -> None:
    for number in range(3):
        _picture(folder / "train" / "NORMAL" / f"IM-010{number}-0001.jpeg", number)
        _picture(folder / "train" / "PNEUMONIA" / f"person10{number}_bacteria_{number}.jpeg", 10 + number)


COVID_HEADER = ["image", "mask", "patientid", "license"]


def covid_copy(folder: Path, rows: int = 6) -> None:
    table = []
    for number in range(rows):
        _picture(folder / "images" / f"img{number}.png", number)
        _lungs(folder / "masks" / f"img{number}.png")
        table.append([f"images/img{number}.png", f"masks/img{number}.png", f"p{number}", "CC BY"])
    _write_csv(folder / "metadata.csv", COVID_HEADER, table)


CHEXPERT_HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS, "Support Devices"]


def chexpert_copy(folder: Path) -> None:
    rows = []
    for number in range(4):
        relative = f"CheXpert-v1.0-small/train/patient0000{number}/study1/view1_frontal.jpg"
        _picture(folder / relative, number)
        rows.append([relative, "Female", "60", "Frontal", "AP", "1.0", "", "0.0", "-1.0", "", "1.0"])
    _write_csv(folder / "CheXpert-v1.0-small" / "train.csv", CHEXPERT_HEADER, rows)


def rsna_copy(folder: Path) -> None:
    rows = [[f"p{number}", "", "", "", "", "0"] for number in range(3)]
    _write_csv(folder / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"], rows)
    for number in range(3):
        write_dicom(folder / "stage_2_train_images" / f"p{number}.dcm", gradient(64, number), patient_id=f"p{number}")


def siim_copy(folder: Path) -> None:
    _write_csv(folder / "train-rle.csv", ["ImageId", " EncodedPixels"], [[f"1.2.{n}", "-1"] for n in range(2)])
    for number in range(2):
        write_dicom(folder / f"study{number}" / f"1.2.{number}.dcm", gradient(1024, number), patient_id=f"s{number}")


COPIES: dict[str, Callable[[Path], None]] = {
    "pneumonia_cls": kermany_copy, "covid_lung_seg": covid_copy, "chexpert_cls": chexpert_copy,
    "rsna_cls": rsna_copy, "siim_seg": siim_copy,
}


def data_root(tmp_path: Path, task: str) -> tuple[Path, Path]:
    """A data root holding a small copy for `task`: (root, the dataset's folder)."""
    root = tmp_path / "root"
    folder = root / get_task(task).folder
    COPIES[task](folder)
    return root, folder


def _outside(tmp_path: Path, name: str = "elsewhere.png") -> Path:
    """A valid image outside the data root (what a crafted path or link would make the loader read)."""
    return _picture(tmp_path / "outside" / name, 99)


def _png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header claims width x height pixels: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(4096)))
            + chunk(b"IEND", b""))


def _dicom_claiming(path: Path, size: int) -> None:
    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.Rows = dataset.Columns = size
    dataset.save_as(path)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


# --- crafted data roots: refused with one line naming the file, the row and the path ---------------------------

def _replace_by_link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def _link_folder(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-folder"
    _picture(outside / "IM-0300-0001.jpeg", 30)
    (folder / "train" / "NORMAL" / "more").symlink_to(outside, target_is_directory=True)


def _second_dicom_of_one_name(folder: Path, tmp_path: Path) -> None:
    write_dicom(folder / "elsewhere" / "1.2.0.dcm", gradient(1024, 7), patient_id="intruder")


HOSTILE: dict[str, tuple[str, Callable[[Path, Path], None], str]] = {
    "covid image at an absolute path outside the folder": (
        "covid_lung_seg", lambda f, t: _set_cell(f / "metadata.csv", 0, "image", str(_outside(t))),
        r"metadata.csv line 2: column 'image' gives the path '/.*elsewhere.png', outside "),
    "covid image path climbing out with ..": (
        "covid_lung_seg",
        lambda f, t: (_outside(t), _set_cell(f / "metadata.csv", 1, "image", "../../outside/elsewhere.png")),
        r"metadata.csv line 3: column 'image' gives the path '../../outside/elsewhere.png', outside "),
    "covid mask path ../../etc/passwd": (
        "covid_lung_seg", lambda f, t: _set_cell(f / "metadata.csv", 2, "mask", "../../../../../../etc/passwd"),
        r"metadata.csv line 4: column 'mask' gives the path '../../../../../../etc/passwd', outside "),
    "covid image replaced by a link to a file outside": (
        "covid_lung_seg", lambda f, t: _replace_by_link(f / "images" / "img0.png", _outside(t)),
        r"images/img0.png: is a symbolic link; .*links are never followed"),
    "covid metadata.csv replaced by a link": (
        "covid_lung_seg", lambda f, t: _replace_by_link(f / "metadata.csv", shutil.copy(f / "metadata.csv", t)),
        r"covid-lungs/metadata.csv: is a symbolic link"),
    "kermany image that is a link to a file outside": (
        "pneumonia_cls", lambda f, t: (f / "train" / "NORMAL" / "IM-0200-0001.jpeg").symlink_to(_outside(t)),
        r"NORMAL/IM-0200-0001.jpeg: is a symbolic link"),
    "kermany folder that is a link to a folder outside": (
        "pneumonia_cls", _link_folder, r"NORMAL/more: is a symbolic link"),
    "kermany FIFO named like an image": (
        "pneumonia_cls", lambda f, t: _fifo(f / "train" / "NORMAL" / "IM-0199-0001.jpeg"),
        r"NORMAL/IM-0199-0001.jpeg: is not a regular file or folder"),
    "chexpert Path that is absolute": (
        "chexpert_cls", lambda f, t: _set_cell(
            f / "CheXpert-v1.0-small" / "train.csv", 1, "Path",
            str(_picture(t / "outside" / "patient00009" / "study1" / "view1_frontal.jpg", 9))),
        r"train.csv line 3: column 'Path' gives the path '/.*patient00009.*', outside "),
    "rsna patientId that climbs out of the image folder": (
        "rsna_cls", lambda f, t: (write_dicom(f.parent / "outside" / "p9.dcm", gradient(64, 9), patient_id="p9"),
                                  _set_cell(f / "stage_2_train_labels.csv", 2, "patientId", "../../outside/p9")),
        r"stage_2_train_labels.csv line 4: column 'patientId' gives the path '../../outside/p9.dcm', outside "),
    "siim two DICOMs of one name in different folders": (
        "siim_seg", _second_dicom_of_one_name, r"two DICOMs named 1.2.0.dcm: .*elsewhere/1.2.0.dcm and .*study0"),
    "PNG claiming 30000 x 30000 pixels (Pillow's own bomb limit)": (
        "covid_lung_seg", lambda f, t: (f / "images" / "img1.png").write_bytes(_png_claiming(30000, 30000)),
        r"metadata.csv line 3: image .*img1.png has more than 50,000,000 pixels"),
    "PNG claiming 8000 x 8000 pixels (under Pillow's limit, over a chest X-ray's)": (
        "covid_lung_seg", lambda f, t: (f / "images" / "img1.png").write_bytes(_png_claiming(8000, 8000)),
        r"metadata.csv line 3: image .*img1.png has 64,000,000 pixels, more than 50,000,000"),
    "DICOM claiming 10000 x 10000 pixels": (
        "rsna_cls", lambda f, t: _dicom_claiming(f / "stage_2_train_images" / "p1.dcm", 10000),
        r"labels.csv line 3: image .*p1.dcm has 100,000,000 pixels, more than 50,000,000"),
    "image file over the size limit (sparse)": (
        "covid_lung_seg", lambda f, t: os.truncate(f / "images" / "img2.png", 256 * 2**20 + 1),
        r"metadata.csv line 4: image file .*img2.png is larger than 268,435,456 bytes"),
    "GIF named .png": (
        "covid_lung_seg", lambda f, t: Image.fromarray(gradient(48, 3).astype(np.uint8)).save(
            f / "images" / "img3.png", format="GIF"),
        r"metadata.csv line 5: cannot read image .*img3.png: not a JPEG or PNG file"),
    "text file named .jpeg": (
        "pneumonia_cls", lambda f, t: (f / "train" / "NORMAL" / "IM-0101-0001.jpeg").write_text("not an image"),
        r"IM-0101-0001.jpeg: cannot read image .*IM-0101-0001.jpeg: not a JPEG or PNG file"),
}


@pytest.mark.reliability("hostile_file")
@pytest.mark.parametrize("case", list(HOSTILE))
def test_crafted_data_root_is_refused(case, tmp_path):
    task, edit, message = HOSTILE[case]
    root, folder = data_root(tmp_path, task)
    edit(folder, tmp_path)
    with pytest.raises(DataError, match=message):
        get_task(task).load(root)


def _swap_image(folder: Path) -> None:
    (folder / "images" / "img0.png").write_bytes((folder / "images" / "img1.png").read_bytes())


def _shrink_lungs(folder: Path) -> None:
    with Image.open(folder / "masks" / "img2.png") as mask:
        pixels = np.asarray(mask).copy()
    pixels[8:20] = 0
    Image.fromarray(pixels).save(folder / "masks" / "img2.png")


@pytest.mark.reliability("hostile_file")
@pytest.mark.parametrize("alter", [_swap_image, _shrink_lungs], ids=["image replaced", "mask altered"])
def test_an_altered_copy_is_not_the_known_copy(alter, tmp_path, monkeypatch):
    root, folder = data_root(tmp_path, "covid_lung_seg")
    first = copies.verify("covid-lungs", root)
    monkeypatch.setitem(copies.OPEN_DATASETS, "covid-lungs",
                        replace(copies.OPEN_DATASETS["covid-lungs"], known_copies={"this copy": first.pinned}))
    assert copies.verify("covid-lungs", root).known_copy == "this copy"
    alter(folder)
    report = copies.verify("covid-lungs", root)
    assert report.counts == first.counts and report.hashes == first.hashes  # the same image names and splits
    assert report.known_copy is None


# --- broken tables: one line naming the file, the physical line and what was expected --------------------------

def _candid_with_a_multiline_report(folder: Path, tmp_path: Path) -> None:
    folder.mkdir(parents=True)
    _write_csv(folder / "Pneumothorax_reports.csv", ["SOPInstanceUID", "filename", "EncodedPixels", "Report"],
               [["1.1", "a.dcm", "-1", "no pneumothorax.\nlines\nand lines"], ["1.2", "b.dcm", "10 five", "small"]])
    write_dicom(folder / "a.dcm", gradient(1024, 1), patient_id="A")
    write_dicom(folder / "b.dcm", gradient(1024, 2), patient_id="B")


def _rewrite_line(path: Path, number: int, change: Callable[[str], str]) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


TABLES: dict[str, tuple[str, Callable[[Path, Path], None], str]] = {
    "covid first row with an extra field": (
        "covid_lung_seg", lambda f, t: _rewrite_line(f / "metadata.csv", 2, lambda s: s + ",extra"),
        r"metadata.csv line 2: 5 fields, expected 4 \(the header's columns\)"),
    "covid row missing its last field": (
        "covid_lung_seg", lambda f, t: _rewrite_line(f / "metadata.csv", 4, lambda s: s.rsplit(",", 1)[0]),
        r"metadata.csv line 4: 3 fields, expected 4"),
    "covid header naming one column twice": (
        "covid_lung_seg", lambda f, t: _rewrite_line(f / "metadata.csv", 1, lambda s: s.replace("license", "image")),
        r"metadata.csv line 1: column 'image' appears twice in the header"),
    "chexpert row missing its last field": (
        "chexpert_cls", lambda f, t: _rewrite_line(f / "CheXpert-v1.0-small" / "train.csv", 3,
                                                   lambda s: s.rsplit(",", 1)[0]),
        r"train.csv line 3: 10 fields, expected 11"),
    "candid bad RLE after a report spanning three lines": (
        "candid_seg", lambda f, t: _candid_with_a_multiline_report(f, t),
        r"Pneumothorax_reports.csv line 5: EncodedPixels is not a list of integers"),
}


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("case", list(TABLES))
def test_broken_table_names_the_real_line(case, tmp_path):
    task, edit, message = TABLES[case]
    root = tmp_path / "root"
    folder = root / get_task(task).folder
    if task in COPIES:
        COPIES[task](folder)
    edit(folder, tmp_path)
    with pytest.raises(DataError, match=message):
        get_task(task).load(root)


# --- files that do not fit: skipped and counted, left out with a warning, or refused ---------------------------

STRAY = {
    "a copy of an image": ("train/NORMAL/IM-0101-0001 (copy).jpeg", "no Kermany patient id in the name"),
    "an image outside NORMAL/ and PNEUMONIA/": ("train/IM-0400-0001.jpeg", "not inside a NORMAL/ or PNEUMONIA/"),
}


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("case", list(STRAY))
def test_kermany_stray_file_is_skipped_named_and_counted(case, tmp_path, caplog):
    relative, why = STRAY[case]
    root, folder = data_root(tmp_path, "pneumonia_cls")
    _picture(folder / relative, 40)
    task = get_task("pneumonia_cls")
    with caplog.at_level(logging.WARNING):
        splits = task.load(root)
    assert sum(len(part) for part in (splits.train, splits.val, splits.test)) == 6
    assert "skipped 1 file(s)" in caplog.text and Path(relative).name in caplog.text and why in caplog.text
    assert task.fingerprint(root)["skipped"] == 1


CONSTANT = {
    "all-black JPEG (Kermany)": ("pneumonia_cls", "train/PNEUMONIA/person101_bacteria_1.jpeg", 0),
    "all-white PNG (COVID lungs)": ("covid_lung_seg", "images/img4.png", 255),
}


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("case", list(CONSTANT))
def test_constant_image_is_left_out_with_a_warning(case, tmp_path, caplog):
    task_name, relative, value = CONSTANT[case]
    root, folder = data_root(tmp_path, task_name)
    _picture(folder / relative, 0, value=value)
    with caplog.at_level(logging.WARNING):
        splits = get_task(task_name).load(root)
    ids = {str(i) for part in (splits.train, splits.val, splits.test) for i in part.sample_ids}
    assert len(ids) == 5 and Path(relative).stem not in ids
    assert "left out 1 constant image(s)" in caplog.text and Path(relative).name in caplog.text


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("inside", [0, 1], ids=["empty mask", "mask drawn with 1 instead of 255"])
def test_empty_lung_mask_is_refused(inside, tmp_path):
    root, folder = data_root(tmp_path, "covid_lung_seg")
    _lungs(folder / "masks" / "img1.png", inside=inside)
    with pytest.raises(DataError, match=r"metadata.csv line 3: mask .*img1.png marks no lung pixel \(lung = 255\)"):
        get_task("covid_lung_seg").load(root)


@pytest.mark.reliability("hostile_file")
def test_verify_of_a_crafted_copy_ends_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from cxrbench.cli import app

    root, folder = data_root(tmp_path, "covid_lung_seg")
    _replace_by_link(folder / "masks" / "img3.png", _outside(tmp_path))
    result = CliRunner().invoke(app, ["data", "verify", "covid-lungs", "--data-root", str(root)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and line.endswith("masks/img3.png: is a symbolic link; a dataset folder holds "
                                                         "regular files and folders only; links are never followed")
