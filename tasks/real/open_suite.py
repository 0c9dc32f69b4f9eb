"""The open suite: openly licensed real chest X-rays anyone can download.

`pneumonia_cls` (Kermany et al. 2018, CC BY 4.0): every image under the root, wherever the copy
put it (the published train/ and test/ folders alike), split by the patient in its file name. A file
that does not fit the published naming (`IM-0115-0001 (copy).jpeg`, `.DS_Store`, an image outside
NORMAL/ and PNEUMONIA/) is skipped, named and counted, as torchxrayvision's folder datasets keep only
the files that match; a file name that contradicts its folder (a bacteria image in NORMAL/) is refused.
`covid_lung_seg` (Cohen et al. COVID-19 collection + v7labs lung masks): lung segmentation.

Both at 64 px with the embedded suite's CPU recipes: the downstream model trains for a fixed number
of steps in every cell, and 64 px keeps a 5-seed run of both tasks within half an hour on 2 cores.
"""

from __future__ import annotations

import re
from pathlib import Path

from cxrbench.errors import DataError
from cxrbench.schemas import TaskMeta

from ..classification import ClassificationTask
from ..downstream.training import Schedule
from ..segmentation import SegmentationTask
from ..splits import SPLIT_RULE
from .attributes import Attributes, table_attributes
from .base import RealTask, Scan
from .confined import inside
from .studies import MaskFile, Study
from .tables import read_table

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
KERMANY_CLASSES = {"NORMAL": 0, "PNEUMONIA": 1}
_KERMANY_NAME = re.compile(r"^(?P<patient>person\d+)_(?P<subtype>bacteria|virus)(_\d+)+$"
                           r"|^(?P<normal>(NORMAL2-)?IM-\d+)(-\d+)+$")


def kermany_patient(path: Path) -> tuple[str, str] | None:
    """(patient id, subtype) from a Kermany file name, None if the name carries none.

    person12_virus_3 -> (person12, virus); IM-0115-0001 -> (IM-0115, normal)."""
    match = _KERMANY_NAME.match(path.stem)
    if match is None:
        return None
    if match["patient"]:
        return match["patient"], match["subtype"]
    return match["normal"], "normal"


class PneumoniaKermany(RealTask, ClassificationTask):
    meta = TaskMeta(
        name="pneumonia_cls", version="2", suite="open", kind="classification", labels=["pneumonia"],
        metric="macro_f1", resolution=64,
        description="Paediatric pneumonia vs normal (Kermany 2018), 64x64; macro F1 of the two classes (pneumonia, "
                    "no pneumonia).",
        data_source="Kermany et al., Cell 2018, CC BY 4.0: https://data.mendeley.com/datasets/rscbjbr9sj "
                    "(`cxrbench data fetch pneumonia-kermany`).",
        split_rule=SPLIT_RULE + "; patient = personN / IM-XXXX / NORMAL2-IM-XXXX from the file name",
        regimes={"scarce": 100, "full": 1000}, default_ratios=[1.0], default_seeds=5,
    )
    folder = "pneumonia-kermany"
    public_data = True
    layout = "any folder tree with NORMAL/ and PNEUMONIA/ folders of JPEGs, e.g. train/NORMAL/IM-0115-0001.jpeg"
    model = "small_cnn"
    schedule = Schedule(steps=400, batch_size=32, learning_rate=2e-3, weight_decay=1e-4)

    def scan(self, folder: Path, files: list[Path]) -> Scan:
        studies, skipped = [], []
        for path in files:
            relative = path.relative_to(folder)
            label = next((KERMANY_CLASSES[p.upper()] for p in reversed(relative.parts[:-1])
                          if p.upper() in KERMANY_CLASSES), None)
            parsed = kermany_patient(path)
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith(".") or "__MACOSX" in relative.parts:
                skipped.append(f"{relative} (not a JPEG or PNG image)")
            elif label is None:
                skipped.append(f"{relative} (not inside a NORMAL/ or PNEUMONIA/ folder)")
            elif parsed is None:
                skipped.append(f"{relative} (no Kermany patient id in the name: personN_bacteria_M, personN_virus_M, "
                               "IM-XXXX-YYYY or NORMAL2-IM-XXXX-YYYY)")
            elif (parsed[1] == "normal") != (label == 0):
                raise DataError(f"{path}: a {parsed[1]} file name inside a {relative.parts[-2]}/ folder")
            else:
                studies.append(Study(path, parsed[0], path.stem, (label,), where=str(path)))
        return Scan(studies, tuple(skipped))


class CovidLungSegmentation(RealTask, SegmentationTask):
    meta = TaskMeta(
        name="covid_lung_seg", version="2", suite="open", kind="segmentation", labels=["lung"], metric="dice",
        resolution=64,
        description="Lung segmentation on frontal COVID-19 X-rays with v7labs masks, 64x64; mean Dice per image, "
                    "threshold and minimum area chosen on val.",
        data_source="Cohen et al. COVID-19 image data collection (https://github.com/ieee8023/covid-chestxray-dataset) "
                    "with the v7labs lung masks (CC BY 4.0, also in torchxrayvision's data/) "
                    "(`cxrbench data fetch covid-lungs`).",
        split_rule=SPLIT_RULE + "; patient = metadata.csv `patientid`",
        regimes={"scarce": 30, "full": None}, default_ratios=[1.0], default_seeds=5,
    )
    folder = "covid-lungs"
    public_data = True
    layout = "metadata.csv with columns image, mask, patientid; images/ and masks/ (masks the size of their images)"
    channels = (8, 16, 32, 64)
    schedule = Schedule(steps=600, batch_size=8, learning_rate=3e-3, weight_decay=1e-4)

    def scan(self, folder: Path, files: list[Path]) -> Scan:
        table = read_table(folder / "metadata.csv", ["image", "mask", "patientid"], what="COVID lungs metadata")
        studies = []
        for index, row in enumerate(table.rows.itertuples(index=False)):
            where = table.where(index)
            for column in ("image", "mask", "patientid"):
                if not str(getattr(row, column)).strip():
                    raise DataError(f"{where}: column {column!r} is blank")
            image, mask = inside(folder, row.image, where, "image"), inside(folder, row.mask, where, "mask")
            studies.append(Study(image, str(row.patientid).strip(), Path(row.image).stem, (1,), where=where,
                                 mask=MaskFile(mask, where)))
        return Scan(studies)

    def attributes(self, folder: Path) -> dict[str, Attributes]:
        """The collection's own `sex` (M, F) and `age` columns; about a tenth of sexes and a quarter of ages are
        blank, which leaves those images in no group of that attribute."""
        table = read_table(folder / "metadata.csv", ["image", "sex", "age"], what="COVID lungs metadata")
        return table_attributes(table, [Path(image).stem for image in table.rows["image"]], "sex", "age")
