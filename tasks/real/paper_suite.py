"""The paper suite: the four datasets of Prakash et al., read from a user's registered copies.

Each loader parses the dataset's published metadata as released (CheXpert's train/valid CSVs,
RSNA's box table, SIIM's and CANDID-PTX's run-length tables); the split is the versioned patient
hash over everything found. Recipes are sized for a GPU (224-256 px, DenseNet-121 / a wider UNet).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cxrbench.errors import DataError
from cxrbench.samples import SampleSet
from cxrbench.schemas import TaskMeta

from ..classification import ClassificationTask
from ..downstream.training import Schedule
from ..segmentation import SegmentationTask
from ..splits import SPLIT_RULE
from .attributes import Attributes, table_attributes
from .base import RealTask, Scan, data_root
from .confined import inside
from .dicom import read_patient_id, read_sex_and_age
from .rle import EMPTY
from .studies import BoxMask, RleMask, Study
from .tables import read_table

log = logging.getLogger(__name__)

UncertainPolicy = Literal["zeros", "ones", "ignore"]
CHEXPERT_LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
_CHEXPERT_VALUES = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1, "": 0}
_CLS_SCHEDULE = Schedule(steps=3000, batch_size=32, learning_rate=1e-3, weight_decay=1e-4)
_SEG_SCHEDULE = Schedule(steps=4000, batch_size=16, learning_rate=1e-3, weight_decay=1e-4)
_SEG_CHANNELS = (16, 32, 64, 128, 256)


def _meta(name: str, kind: str, labels: list[str], resolution: int, description: str, source: str,
          patient: str) -> TaskMeta:
    # The paper enlarged small training sets; its scarce sizes were not published per task, so these are ours
    # (not yet measured on the real data, which needs registration).
    regimes = {"scarce": 1000 if kind == "classification" else 500, "full": None}
    return TaskMeta(name=name, version="2", suite="paper", kind=kind, labels=labels,
                    metric="macro_f1" if kind == "classification" else "dice", resolution=resolution,
                    description=description, data_source=source, split_rule=f"{SPLIT_RULE}; patient = {patient}",
                    regimes=regimes, default_ratios=[1.0], default_seeds=5)


PRETRAINING_FOLDER = "pretraining"
"""Where the paper suite's pretraining corpora live under the data root: `<data root>/pretraining/<task folder>/`."""


class _UserCorpus(RealTask):
    """The paper suite's pretraining pool: a corpus the user supplies (e.g. MIMIC-CXR, or CheXpert outside the
    subset, converted to the task's layout) at `<data root>/pretraining/<task folder>/`, laid out like the task's
    own dataset and read by the task's own loader; refused if missing or if it shares a patient with the regime's
    training subset, val or test."""

    def corpus_dir(self, root: Path | None) -> Path:
        base = data_root(root)
        folder = None if base is None else base / PRETRAINING_FOLDER / self.folder
        if folder is None or not folder.is_dir():
            raise DataError(f"task {self.meta.name}: no pretraining corpus at "
                            f"{folder or f'<data root>/{PRETRAINING_FOLDER}/{self.folder}'}; put one there laid out "
                            f"like the task's dataset ({self.layout}), or train from scratch")
        return folder

    def pretraining_pool(self, root: Path | None, *, train_size: int | None,
                         cache_dir: Path | None = None) -> SampleSet:
        return self._sample_set(self._corpus_studies(root, train_size), cache_dir)

    def pretraining_pool_is_empty(self, root: Path | None, *, train_size: int | None) -> bool:
        """Never: the corpus lies outside the task's data, so even a regime of the whole training split has it."""
        return False

    def pretraining_fingerprint(self, root: Path | None, *, train_size: int | None) -> dict[str, Any]:
        self._corpus_studies(root, train_size)
        return {"task": self.meta.name, "pool": "user corpus", **self.copy_identity(self.corpus_dir(root))}

    def _corpus_studies(self, root: Path | None, train_size: int | None) -> list[Study]:
        corpus = self.studies(self.corpus_dir(root))
        splits = self.patients_by_split(root, train_size)
        mine = {s.patient_id for s in corpus}
        for name, patients in splits.items():
            shared = sorted(mine & patients)
            if shared:
                raise DataError(f"task {self.meta.name}: the pretraining corpus {self.corpus_dir(root)} shares "
                                f"{len(shared)} patient(s) with the {name} split, e.g. {shared[0]}; it must be "
                                f"disjoint from the regime's training subset, val and test")
        return corpus


class _PaperClassification(_UserCorpus, ClassificationTask):
    """CheXpert and RSNA: torchxrayvision's DenseNet-121 layout (random init) at 224 px."""

    model = "xrv_densenet"
    schedule = _CLS_SCHEDULE


class ChexpertClassification(_PaperClassification):
    meta = _meta("chexpert_cls", "classification", [n.lower().replace(" ", "_") for n in CHEXPERT_LABELS], 224,
                 "CheXpert frontal images, 5 findings, multi-label macro F1; uncertain labels as U-Zeros by default.",
                 "Stanford ML Group, CheXpert (registration): https://stanfordmlgroup.github.io/competitions/chexpert/",
                 "the patientNNNNN folder in `Path`")
    folder = "chexpert"
    layout = "CheXpert-v1.0-small/ (or CheXpert-v1.0/) as unzipped: train.csv, valid.csv, train/, valid/"
    def __init__(self, uncertain: UncertainPolicy = "zeros") -> None:
        self.uncertain = uncertain

    def settings(self) -> dict[str, Any]:
        return {"uncertain": self.uncertain, "views": "Frontal"}

    def scan(self, folder: Path, files: list[Path]) -> Scan:
        studies: list[Study] = []
        for csv in _chexpert_tables(folder):
            studies += self.studies_in(csv, folder)
        return Scan(studies)

    def attributes(self, folder: Path) -> dict[str, Attributes]:
        """The CSVs' `Sex` (Male, Female, Unknown) and `Age` (whole years) columns, per `Path` (the sample id)."""
        found: dict[str, Attributes] = {}
        for csv in _chexpert_tables(folder):
            table = read_table(csv, ["Path", "Sex", "Age"], what="CheXpert demographics")
            found |= table_attributes(table, table.rows["Path"].tolist(), "Sex", "Age")
        return found

    def studies_in(self, csv: Path, folder: Path) -> list[Study]:
        """Frontal rows of one CheXpert CSV; image paths are relative to `folder` (the CSV's grandparent).

        Vectorised with pandas: the full train.csv has 223k rows."""
        found = read_table(csv, ["Path", "Frontal/Lateral", *CHEXPERT_LABELS], what="CheXpert labels")
        table = found.rows
        raw = table[CHEXPERT_LABELS].apply(lambda column: column.str.strip())
        bad = ~raw.isin(list(_CHEXPERT_VALUES))
        if bad.to_numpy().any():
            index, column = next((i, c) for i, c in zip(*np.nonzero(bad.to_numpy()), strict=True))
            raise DataError(f"{found.where(int(index))}: column {CHEXPERT_LABELS[column]!r} is "
                            f"{raw.iat[index, column]!r}; expected 1.0, 0.0, -1.0 or blank")
        patients = table["Path"].str.extract(r"(patient\d+)", expand=False)
        if patients.isna().any():
            index = int(np.flatnonzero(patients.isna().to_numpy())[0])
            raise DataError(f"{found.where(index)}: Path {table['Path'].iat[index]!r} has no patientNNNNN folder")
        values = np.array(raw.replace(_CHEXPERT_VALUES), dtype=np.int8)
        frontal = (table["Frontal/Lateral"] == "Frontal").to_numpy()
        uncertain = (values == -1).any(axis=1) & frontal
        keep = frontal & ~uncertain if self.uncertain == "ignore" else frontal
        values[values == -1] = 1 if self.uncertain == "ones" else 0
        log.info("%s: %d frontal images kept, %d lateral left out; %d with an uncertain label (policy %s%s)",
                 csv, int(keep.sum()), int((~frontal).sum()), int(uncertain.sum()), self.uncertain,
                 ": left out" if self.uncertain == "ignore" else "")
        paths, patients, labels = table["Path"].tolist(), patients.tolist(), values.tolist()
        return [Study(inside(folder, paths[i], where, "Path"), patients[i], paths[i], tuple(labels[i]), where)
                for i in np.flatnonzero(keep).tolist() for where in (found.where(i),)]


def _chexpert_tables(folder: Path) -> list[Path]:
    tables = sorted(folder.glob("*/train.csv")) + sorted(folder.glob("*/valid.csv"))
    if not tables:
        raise DataError(f"missing CheXpert metadata: expected {folder}/CheXpert-v1.0-small/train.csv")
    return tables


class _HeaderAttributes(RealTask):
    """RSNA, SIIM, CANDID-PTX: sex and age from each test image's DICOM header (PatientSex, PatientAge), the copy's
    own record; only the test images' headers are read (RSNA's whole set would be 27k files)."""

    def attributes_of(self, folder: Path, samples: list[str]) -> list[Attributes] | None:
        studies = {study.sample_id: study for study in self.studies(folder)}
        return [read_sex_and_age(studies[sample].image, studies[sample].where) for sample in samples]


class RsnaClassification(_HeaderAttributes, _PaperClassification):
    meta = _meta("rsna_cls", "classification", ["pneumonia"], 224,
                 "RSNA Pneumonia Detection (stage 2 train), lung opacity vs none, macro F1 of the two classes; "
                 "boxes as optional masks.",
                 "RSNA Pneumonia Detection Challenge (Kaggle, registration): "
                 "https://www.kaggle.com/c/rsna-pneumonia-detection-challenge", "`patientId` (one image each)")
    folder = "rsna-pneumonia"
    layout = "stage_2_train_labels.csv and stage_2_train_images/<patientId>.dcm"
    def __init__(self, boxes: bool = False) -> None:
        self.boxes = boxes

    def settings(self) -> dict[str, Any]:
        return {"boxes": self.boxes}

    def with_masks(self) -> bool:
        return self.boxes

    def scan(self, folder: Path, files: list[Path]) -> Scan:
        table = read_table(folder / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"],
                           what="RSNA labels")
        targets: dict[str, tuple[int, str]] = {}
        boxes: dict[str, list[tuple[float, float, float, float]]] = {}
        for index, row in enumerate(table.rows.to_dict("records")):
            where, patient = table.where(index), row["patientId"].strip()
            if row["Target"] not in ("0", "1") or not patient:
                raise DataError(f"{where}: expected a patientId and Target 0 or 1, got {row['patientId']!r}, "
                                f"{row['Target']!r}")
            target = int(row["Target"])
            first = targets.setdefault(patient, (target, where))
            if first[0] != target:
                raise DataError(f"{where}: Target {target} for {patient}, but {first[1]} says {first[0]}")
            if target:
                try:
                    boxes.setdefault(patient, []).append(tuple(float(row[c]) for c in ("x", "y", "width", "height")))
                except ValueError:
                    raise DataError(f"{where}: a Target 1 row needs numeric x, y, width, height") from None
        images = folder / "stage_2_train_images"
        return Scan([Study(inside(images, f"{patient}.dcm", where, "patientId"), patient, patient, (target,), where,
                           BoxMask(tuple(boxes.get(patient, ())), where) if self.boxes else None)
                     for patient, (target, where) in targets.items()])


class _RleSegmentation(_HeaderAttributes, _UserCorpus, SegmentationTask):
    """SIIM and CANDID-PTX: RLE rows per image (united), DICOMs found anywhere under the folder."""

    channels = _SEG_CHANNELS
    schedule = _SEG_SCHEDULE
    table_name: str
    id_column: str

    def file_name(self, row) -> str:
        return f"{row[self.id_column].strip()}.dcm"

    def scan(self, folder: Path, files: list[Path]) -> Scan:
        table = read_table(folder / self.table_name, [self.id_column, "EncodedPixels"], what=f"{self.meta.name} masks")
        dicoms: dict[str, Path] = {}
        for path in (p for p in files if p.suffix.lower() == ".dcm"):
            first = dicoms.setdefault(path.name, path)
            if first != path:
                raise DataError(f"{folder}: two DICOMs named {path.name}: {first} and {path}; {self.table_name} "
                                "names images by file name, so each name may occur once")
        rows: dict[str, list[tuple[str, str]]] = {}
        for index, row in enumerate(table.rows.to_dict("records")):
            rows.setdefault(self.file_name(row), []).append((row["EncodedPixels"], table.where(index)))
        studies = []
        for name, encoded in rows.items():
            where = encoded[0][1]
            if name not in dicoms:
                raise DataError(f"{where}: no DICOM named {name} under {folder}")
            regions = tuple((value, at) for value, at in encoded if value.strip() != EMPTY)
            studies.append(Study(dicoms[name], read_patient_id(dicoms[name], where), Path(name).stem,
                                 (int(bool(regions)),), where, RleMask(regions)))
        unused = sorted(set(dicoms) - set(rows))
        return Scan(studies, tuple(f"{dicoms[name].relative_to(folder)} (no row in {self.table_name})"
                                   for name in unused))


class SiimSegmentation(_RleSegmentation):
    table_name = "train-rle.csv"
    id_column = "ImageId"
    meta = _meta("siim_seg", "segmentation", ["pneumothorax"], 256,
                 "SIIM-ACR Pneumothorax, 1024 px DICOMs with RLE masks, Dice per image (empty-empty = 1).",
                 "SIIM-ACR Pneumothorax Segmentation (Kaggle, registration): "
                 "https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation", "the DICOM PatientID")
    folder = "siim-acr-pneumothorax"
    layout = "train-rle.csv (ImageId, EncodedPixels) and the DICOMs <ImageId>.dcm in any nested folders"


class CandidSegmentation(_RleSegmentation):
    table_name = "Pneumothorax_reports.csv"
    id_column = "SOPInstanceUID"
    meta = _meta("candid_seg", "segmentation", ["pneumothorax"], 256,
                 "CANDID-PTX pneumothorax masks on 1024 px DICOMs (RLE as SIIM), Dice per image (empty-empty = 1).",
                 "CANDID-PTX (Feng et al. 2021, data use agreement): https://doi.org/10.17608/k6.auckland.14173982",
                 "the DICOM PatientID")
    folder = "candid-ptx"
    layout = "Pneumothorax_reports.csv (SOPInstanceUID, filename, EncodedPixels, Report) and the DICOMs it names"

    def file_name(self, row) -> str:
        if not str(row.get("filename", "")).strip():
            return super().file_name(row)
        name = row["filename"].strip()
        return name if name.lower().endswith(".dcm") else f"{name}.dcm"
