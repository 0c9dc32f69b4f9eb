"""Local copies of the open datasets: where they come from, and whether a copy is complete and splits as ours.

`verify` lists a copy's images, decodes every one (a truncated file fails here, not mid-run),
hashes each split's sorted image list, so two sites can tell in seconds that they score on the
same patients, and hashes every image's and mask's bytes, so that a copy with an altered or
replaced file is not taken for the known copy whose names it carries. `fetch` downloads from the
public source where there is a network; where there is none it says where to put the files.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cxrbench.errors import DataError
from cxrbench.registry import get_task

from ..splits import split_of
from .base import RealTask
from .confined import read_bytes
from .decode import decode_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenDataset:
    folder: str
    task: str
    url: str
    how: str
    known_copies: dict[str, dict[str, int | str]] = field(default_factory=dict)
    """Name -> image count per split, sha256 of each split's image list and of every file's content, as measured
    on that copy (`CopyReport.pinned`)."""


SPLITS = ("train", "val", "test")


def _pinned(counts: tuple[int, int, int], hashes: tuple[str, str, str], content: str) -> dict[str, int | str]:
    """A copy's image count per split, sha256 of each split's image list and of its files, in `verify`'s terms."""
    hashed = {f"{split}_sha256": h for split, h in zip(SPLITS, hashes, strict=True)}
    return {**dict(zip(SPLITS, counts, strict=True)), **hashed, "content_sha256": content}


OPEN_DATASETS = {
    "pneumonia-kermany": OpenDataset(
        "pneumonia-kermany", "pneumonia_cls",
        "https://doi.org/10.17632/rscbjbr9sj.2",
        "ChestXRay2017.zip from that page (Kermany et al., Mendeley Data v2, CC BY 4.0), unpacked so that "
        "<root>/pneumonia-kermany/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg",
        known_copies={"224 px train-only copy (../shared/data)": _pinned(
            (3143, 730, 1343), ("0e457b6014f89527c2f37f10b009f56f96d3654753e12de16e92bab84f403503",
                                "57bec73371db6a0c17fb11072cdebfec10a53c5ac869c3132aa2cbec4663a419",
                                "fe0f04fe1dec31caa2e9ea6ff7d82aea89d56f71487a9f01584a7e4736b8f2f2"),
            "c41dccb8b879a6d4d493625c079ba7796482927e2d2439b4c04ade0d7ed5ce9e")},
    ),
    "covid-lungs": OpenDataset(
        "covid-lungs", "covid_lung_seg",
        "https://github.com/ieee8023/covid-chestxray-dataset/archive/refs/heads/master.zip",
        "the COVID-19 image data collection (images/ and metadata.csv) with the v7labs lung masks from "
        "torchxrayvision's data/semantic_masks_v7labs_lungs.zip, as <root>/covid-lungs/{metadata.csv,images/,masks/} "
        "(metadata.csv: image, mask, patientid, ... one row per masked frontal image)",
        known_copies={"328-image copy (../shared/data)": _pinned(
            (219, 50, 59), ("63d102e0c9a27149001510d6749c9581423db27ebd2dd0d27a4050f1a4eaae2b",
                            "38f1087951e44185dba3d2b944b3a574033c7781c89d972409f815dc91816d22",
                            "3438d6f50e32c6996ce20765f137206d58f4ad12e0b35ee559fd384633436e7d"),
            "6076fa088e8b27d11f1ae55cc8cb0ad865b04b0dd560c636d12f2e7f59957f86")},
    ),
}


@dataclass(frozen=True)
class CopyReport:
    name: str
    folder: Path
    counts: dict[str, int]
    hashes: dict[str, str]
    content_sha256: str
    """sha256 over every image's (and mask's) name and content hash, in image-name order."""
    known_copy: str | None
    skipped: tuple[str, ...] = ()
    """Files the loader skipped (they do not fit the dataset's layout), each "path (why)"."""
    constant: tuple[str, ...] = ()
    """Images with one value everywhere, which a run leaves out."""

    @property
    def pinned(self) -> dict[str, int | str]:
        """What `OpenDataset.known_copies` holds for a copy measured like this one."""
        return _pinned(tuple(self.counts[s] for s in SPLITS), tuple(self.hashes[s] for s in SPLITS),
                       self.content_sha256)


def split_lists(studies) -> dict[str, list[str]]:
    """Each split's sorted image ids under the versioned patient hash rule."""
    lists: dict[str, list[str]] = {split: [] for split in SPLITS}
    for study in studies:
        lists[split_of(study.patient_id)].append(study.sample_id)
    return {name: sorted(ids) for name, ids in lists.items()}


def verify(name: str, root: Path | None, *, progress: Callable[[int, int], None] | None = None) -> CopyReport:
    """Count, decode and hash a local copy; raises DataError naming the first bad file."""
    dataset = _dataset(name)
    task = get_task(dataset.task)
    assert isinstance(task, RealTask)
    folder = task.dataset_dir(root)
    found = task.scanned(folder)
    contents, constant = [], []
    for number, study in enumerate(found.studies):
        data = read_bytes(study.image, study.where, "image file")
        pixels = decode_image(data, study.image, study.where)
        if pixels.min() == pixels.max():
            constant.append(str(study.image))
        mask = "-"
        if study.mask is not None:
            study.mask.read(pixels.shape)
            mask = study.mask.content_sha256()
        contents.append(f"{study.sample_id} {hashlib.sha256(data).hexdigest()} {mask}")
        if progress is not None:
            progress(number + 1, len(found.studies))
    lists = split_lists(found.studies)
    counts = {split: len(ids) for split, ids in lists.items()}
    hashes = {split: hashlib.sha256("\n".join(ids).encode()).hexdigest() for split, ids in lists.items()}
    content = hashlib.sha256("\n".join(sorted(contents)).encode()).hexdigest()
    report = CopyReport(name, folder, counts, hashes, content, None, found.skipped, tuple(constant))
    known = next((label for label, pinned in dataset.known_copies.items() if pinned == report.pinned), None)
    return replace(report, known_copy=known)


def fetch(name: str, root: Path, *, progress: Callable[[int, int], None] | None = None) -> Path:
    """Download the dataset's archive and unpack it under `root`; without a network, say what to do by hand."""
    dataset = _dataset(name)
    by_hand = f"download {dataset.url} on a machine with internet and put {dataset.how}"
    target = root / dataset.folder
    root.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise DataError(f"{target} already exists; run `cxrbench data verify {name}` to check it")
    try:
        response = urllib.request.urlopen(dataset.url, timeout=20)
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"cannot reach {dataset.url} ({getattr(error, 'reason', error)}): no network here. "
                        f"By hand: {by_hand}") from None
    with tempfile.TemporaryDirectory(dir=root) as staging:
        archive = Path(staging) / "archive.zip"
        total = int(response.headers.get("Content-Length") or 0)
        digest, done = hashlib.sha256(), 0
        with response, open(archive, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        log.info("%s: %d bytes, sha256 %s", dataset.url, done, digest.hexdigest())
        try:
            with zipfile.ZipFile(archive) as unpacked:
                unpacked.extractall(Path(staging) / "unpacked")
        except zipfile.BadZipFile:
            raise DataError(f"{dataset.url} did not give a zip archive; by hand: {by_hand}") from None
        shutil.move(str(Path(staging) / "unpacked"), target)  # one rename: a failed fetch leaves no half copy
    log.warning("unpacked into %s; arrange it as %s, then run `cxrbench data verify %s`", target, dataset.how, name)
    return target


def _dataset(name: str) -> OpenDataset:
    if name not in OPEN_DATASETS:
        raise DataError(f"unknown open dataset {name!r}; known: {', '.join(OPEN_DATASETS)} "
                        "(the paper suite's sets need registration: see `cxrbench list tasks`)")
    return OPEN_DATASETS[name]
