"""What every real-data task shares: finding its folder, the patient-level split, pixels through the cache.

A loader only turns a dataset's published metadata into `Study` rows (`scan`); refusing links in the
folder, splitting by the versioned patient hash, the fixed training subset, preprocessing, caching and
leaving out constant images live here once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cxrbench.errors import DataError
from cxrbench.samples import SampleSet, Splits
from cxrbench.schemas import TaskMeta
from cxrbench.subgroups import Subgroups, sex_and_age

from ..splits import fixed_train_subset, outside_subset, split_indices
from .attributes import Attributes
from .confined import regular_files
from .pixels import PIXELS_STAGE, load_pixels
from .studies import Study, file_identity

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "CXRBENCH_DATA_ROOT"
_NAMED = 5
"""How many names a warning about left-out files lists (then "...")."""


@dataclass(frozen=True)
class Scan:
    """What a loader found in a copy: one study per image, and the files it skipped (each "path (why)")."""

    studies: list[Study]
    skipped: tuple[str, ...] = ()


def named(items: list[str]) -> str:
    """The first few of `items`, for a one-line warning."""
    return ", ".join(items[:_NAMED]) + (" ..." if len(items) > _NAMED else "")


def data_root(root: Path | None) -> Path | None:
    """The root given on the command line, else the environment variable, else None."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else None


class RealTask:
    """Mixin for tasks read from a user's copy of a dataset under `<data root>/<folder>`."""

    meta: ClassVar[TaskMeta]
    folder: ClassVar[str]
    """The dataset's folder name under the data root."""
    layout: ClassVar[str]
    """What the folder must contain, for the error a missing copy gets."""
    data_version: ClassVar[str] = "1"
    """The version of the data alone (bumped when loading or preprocessing changes), so that a new recipe
    (meta.version) keeps generator fits cached; the recipe enters every downstream cell's key itself."""

    @abstractmethod
    def scan(self, folder: Path, files: list[Path]) -> Scan:
        """Every image of the copy at `folder`, parsed from its published metadata; `files` lists the folder's
        regular files (sorted), for loaders that find images by name rather than through a table."""

    def settings(self) -> dict[str, Any]:
        """Task parameters that change the data (e.g. a label policy); part of the fingerprint."""
        return {}

    def dataset_dir(self, root: Path | None) -> Path:
        base = data_root(root)
        if base is None:
            raise DataError(f"task {self.meta.name} reads real data: pass --data-root DIR (or set {DATA_ROOT_ENV}) "
                            f"with the dataset in DIR/{self.folder}/ ({self.layout}). {self.meta.data_source}")
        folder = base / self.folder
        if not folder.is_dir():
            raise DataError(f"task {self.meta.name}: no folder {folder}; put the dataset there "
                            f"({self.layout}). {self.meta.data_source}")
        return folder

    def all_studies(self, root: Path | None) -> list[Study]:
        return self.studies(self.dataset_dir(root))

    def studies(self, folder: Path) -> list[Study]:
        """Every image of the copy at `folder` (see `scanned`)."""
        return self.scanned(folder).studies

    def scanned(self, folder: Path) -> Scan:
        """The copy at `folder`, scanned once: a link or special file anywhere in it is refused, skipped files
        are logged with their count and names, and an image listed twice is refused."""
        memo = self.__dict__.setdefault("_scan_memo", {})
        if folder not in memo:
            found = self.scan(folder, regular_files(folder))
            if found.skipped:
                log.warning("%s: skipped %d file(s) under %s that do not fit the dataset's layout: %s",
                            self.meta.name, len(found.skipped), folder, named(list(found.skipped)))
            if not found.studies:
                raise DataError(f"task {self.meta.name}: found no images in {folder} ({self.layout})")
            _check_one_patient_per_image(found.studies)
            memo[folder] = found
        return memo[folder]

    def fingerprint(self, root: Path | None) -> dict[str, Any]:
        return {"task": self.meta.name, **self.copy_identity(self.dataset_dir(root))}

    def copy_identity(self, folder: Path) -> dict[str, Any]:
        """What identifies the copy at `folder` as this task loads it: its files, the settings, the preprocessing."""
        found = self.scanned(folder)
        files = "\n".join(file_identity(s) for s in found.studies)
        return {"version": self.data_version, "resolution": self.meta.resolution,
                "settings": self.settings(), "pixels": PIXELS_STAGE, "skipped": len(found.skipped),
                "files_sha256": hashlib.sha256(files.encode()).hexdigest()}

    def attributes(self, folder: Path) -> dict[str, Attributes]:
        """(sex, age) per sample id from the copy's metadata, for the subgroup analysis. Default: the dataset
        records none (e.g. Kermany's file names carry no patient attribute)."""
        return {}

    def attributes_of(self, folder: Path, samples: list[str]) -> list[Attributes] | None:
        """(sex, age) of each of `samples`; None where the dataset records no attribute at all. Default: looked up
        in `attributes`; a dataset that keeps them per image file (DICOM headers) reads only these images'."""
        known = self.attributes(folder)
        return [known.get(sample, (None, None)) for sample in samples] if known else None

    def subgroups(self, test: SampleSet, root: Path | None) -> Subgroups:
        """Sex and age band of each test image's patient (`attributes_of`); a blank value puts it in no group."""
        found = self.attributes_of(self.dataset_dir(root), test.sample_ids.astype(str).tolist())
        if found is None:
            return {}
        return sex_and_age([sex for sex, _ in found], [age for _, age in found])

    def load(self, root: Path | None, *, train_size: int | None = None, cache_dir: Path | None = None) -> Splits:
        studies, rows = self._split_studies(root)
        train_rows = rows["train"][fixed_train_subset(self._patients(studies, rows["train"]), train_size)]
        parts = {name: self._sample_set([studies[r] for r in index], cache_dir)
                 for name, index in (("train", train_rows), ("val", rows["val"]), ("test", rows["test"]))}
        log.info("%s: %d train / %d val / %d test images", self.meta.name, *(len(p) for p in parts.values()))
        return Splits(**parts)

    def pool(self, root: Path | None, *, train_size: int | None, cache_dir: Path | None = None) -> SampleSet:
        studies = self._pool_studies(root, train_size)
        if not studies:
            return SampleSet.empty(self.meta.resolution, len(self.meta.labels), with_masks=self.with_masks())
        return self._sample_set(studies, cache_dir)

    def pretraining_pool(self, root: Path | None, *, train_size: int | None,
                         cache_dir: Path | None = None) -> SampleSet:
        """The open suite's: the regime's pool (`pool`, real_extra's source), so one pretrained fit per regime.
        Refused where the regime uses the whole training split, which leaves no image outside it (the plan trains a
        pretraining generator from scratch there: `pretraining_pool_is_empty`)."""
        self._refuse_no_pool(root, train_size)
        return self.pool(root, train_size=train_size, cache_dir=cache_dir)

    def pretraining_fingerprint(self, root: Path | None, *, train_size: int | None) -> dict[str, Any]:
        self._refuse_no_pool(root, train_size)
        ids = "\n".join(s.sample_id for s in self._pool_studies(root, train_size))
        return {**self.fingerprint(root), "pool": "training split outside the regime's subset",
                "ids_sha256": hashlib.sha256(ids.encode()).hexdigest()}

    def pretraining_pool_is_empty(self, root: Path | None, *, train_size: int | None) -> bool:
        return not self._pool_studies(root, train_size)

    def _refuse_no_pool(self, root: Path | None, train_size: int | None) -> None:
        if not self._pool_studies(root, train_size):
            regime = "the whole training split" if train_size is None else f"{train_size:,} training images"
            raise DataError(f"task {self.meta.name}: a regime of {regime} leaves no training image outside its subset "
                            f"to pretrain on (the open suite's pretraining pool); pick a smaller regime or train from "
                            f"scratch (init: scratch)")

    def patients_by_split(self, root: Path | None, train_size: int | None) -> dict[str, set[str]]:
        """The patients of the regime's training subset, val and test: what a pretraining corpus must not hold."""
        studies, rows = self._split_studies(root)
        subset = rows["train"][fixed_train_subset(self._patients(studies, rows["train"]), train_size)]
        return {name: set(self._patients(studies, index).tolist())
                for name, index in (("training subset", subset), ("val", rows["val"]), ("test", rows["test"]))}

    def _pool_studies(self, root: Path | None, train_size: int | None) -> list[Study]:
        """The studies of the regime's pool: training-split patients outside its subset."""
        studies, rows = self._split_studies(root)
        return [studies[r] for r in rows["train"][outside_subset(self._patients(studies, rows["train"]), train_size)]]

    def _split_studies(self, root: Path | None) -> tuple[list[Study], dict[str, np.ndarray]]:
        studies = self.all_studies(root)
        return studies, split_indices([s.patient_id for s in studies])

    @staticmethod
    def _patients(studies: list[Study], rows: np.ndarray) -> np.ndarray:
        return np.array([studies[r].patient_id for r in rows])

    def with_masks(self) -> bool:
        """Whether the task's samples carry masks (segmentation tasks; RSNA's boxes on request)."""
        return self.meta.kind == "segmentation"

    def _sample_set(self, studies: list[Study], cache_dir: Path | None) -> SampleSet:
        pixels = load_pixels(studies, self.meta.resolution, with_masks=self.with_masks(), cache_dir=cache_dir)
        if pixels.constant.any():
            log.warning("%s: left out %d constant image(s) (one value everywhere, nothing to learn or score): %s",
                        self.meta.name, int(pixels.constant.sum()),
                        named([str(s.image) for s, c in zip(studies, pixels.constant, strict=True) if c]))
            studies = [s for s, c in zip(studies, pixels.constant, strict=True) if not c]
        labels = np.array([s.labels for s in studies], dtype=np.int8).reshape(len(studies), len(self.meta.labels))
        return SampleSet(pixels.images, labels, pixels.masks, np.array([s.patient_id for s in studies]),
                         np.array([s.sample_id for s in studies]))


def _check_one_patient_per_image(studies: list[Study]) -> None:
    """An image listed twice (under one or two patients) would be counted twice or straddle two splits."""
    seen: dict[str, Study] = {}
    for study in studies:
        first = seen.setdefault(study.sample_id, study)
        if first is not study:
            raise DataError(f"{study.where}: image {study.sample_id} is listed twice "
                            f"(first at {first.where}, patients {first.patient_id} and {study.patient_id})")
