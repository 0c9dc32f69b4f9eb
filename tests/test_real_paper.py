"""Paper-suite loaders against the real metadata shipped in torchxrayvision, with fabricated images for the
rows used."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrbench.errors import DataError
from cxrbench.registry import get_task, suite_tasks
from cxrbench.tasks.real.decode import read_image, resize_mask
from cxrbench.tasks.real.paper_suite import CHEXPERT_LABELS, ChexpertClassification, RsnaClassification
from cxrbench.tasks.real.rle import decode_rle
from cxrbench.tasks.splits import split_of

from .real_data import gradient, write_dicom, xrv_data

_SEX = {"Male": "M", "Female": "F", "M": "M", "F": "F"}


def _groups_of(groups: dict, row: int) -> dict[str, list[str]]:
    """The groups test row `row` is in, per attribute."""
    return {attribute: [g for g, mask in found.items() if mask[row]] for attribute, found in groups.items()}


def _expected(sex: str, age: str) -> dict[str, list[str]]:
    """What the metadata says, mapped independently of the parsers: a blank, Unknown or >125 value in no group."""
    band = [] if not age.strip() or float(age) > 125 else ["<60" if float(age) < 60 else ">=60"]
    return {"sex": [_SEX[sex]] if sex in _SEX else [], "age": band}


def reference_rle2mask(rle: str, width: int = 1024, height: int = 1024) -> np.ndarray:
    """SIIM's published mask_functions.rle2mask, as the competition shipped it (then transposed)."""
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in rle.split()])
    starts, lengths = array[0::2], array[1::2]
    current = 0
    for index, start in enumerate(starts):
        current += start
        mask[current:current + lengths[index]] = 255
        current += lengths[index]
    return mask.reshape(width, height).T > 0


@pytest.fixture(scope="module")
def siim_table() -> pd.DataFrame:
    table = pd.read_csv(xrv_data("siim-pneumothorax-train-rle.csv.gz"), dtype=str)
    table.columns = [c.strip() for c in table.columns]
    return table


def test_paper_suite_is_registered():
    assert suite_tasks("paper") == ["candid_seg", "chexpert_cls", "rsna_cls", "siim_seg"]


# --- CheXpert ---------------------------------------------------------------------------------

def test_chexpert_real_metadata_counts_policy_and_split(tmp_path):
    csv = xrv_data("chexpert_train.csv.gz")
    table = pd.read_csv(csv)
    frontal = table[table["Frontal/Lateral"] == "Frontal"]
    studies = ChexpertClassification("zeros").studies_in(csv, tmp_path)
    assert len(studies) == len(frontal)
    labels = np.array([s.labels for s in studies])
    np.testing.assert_array_equal(labels.sum(0), (frontal[CHEXPERT_LABELS] == 1).sum().to_numpy())
    patients = {s.patient_id for s in studies}
    assert len(patients) == frontal["Path"].str.extract(r"(patient\d+)")[0].nunique()
    shares = pd.Series([split_of(p) for p in patients]).value_counts(normalize=True)
    assert abs(shares["train"] - 0.60) < 0.01 and abs(shares["val"] - 0.15) < 0.01


@pytest.mark.parametrize("policy", ["ones", "ignore"])
def test_chexpert_uncertain_policy(policy, tmp_path):
    part = tmp_path / "part.csv"
    table = pd.read_csv(xrv_data("chexpert_train.csv.gz"), nrows=3000)
    table.to_csv(part, index=False)
    frontal = table[table["Frontal/Lateral"] == "Frontal"]
    studies = ChexpertClassification(policy).studies_in(part, tmp_path)
    uncertain = (frontal[CHEXPERT_LABELS] == -1).any(axis=1)
    if policy == "ignore":
        assert len(studies) == int((~uncertain).sum())
    else:
        labels = np.array([s.labels for s in studies])
        expected = frontal[CHEXPERT_LABELS].isin([1, -1]).sum().to_numpy()
        np.testing.assert_array_equal(labels.sum(0), expected)


def _chexpert_copy(tmp_path, rows: int) -> pd.DataFrame:
    table = pd.read_csv(xrv_data("chexpert_train.csv.gz"), nrows=rows)
    folder = tmp_path / "chexpert"
    for index, relative in enumerate(table["Path"]):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((gradient(96, index) // 16).astype(np.uint8)).save(folder / relative)
    (folder / "CheXpert-v1.0-small").mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "CheXpert-v1.0-small" / "train.csv", index=False)
    return table


def test_chexpert_loads_fabricated_images_for_real_rows(tmp_path):
    table = _chexpert_copy(tmp_path, rows=30)
    splits = get_task("chexpert_cls").load(tmp_path, cache_dir=tmp_path / "cache")
    loaded = sum(len(s) for s in (splits.train, splits.val, splits.test))
    assert loaded == int((table["Frontal/Lateral"] == "Frontal").sum())
    assert splits.train.images.shape[1:] == (224, 224)
    by_id = {str(i): label for part in (splits.train, splits.val, splits.test)
             for i, label in zip(part.sample_ids, part.labels)}
    row = table[table["Frontal/Lateral"] == "Frontal"].iloc[1]
    np.testing.assert_array_equal(by_id[row["Path"]], (row[CHEXPERT_LABELS] == 1).astype(int).to_numpy())


def test_chexpert_bad_label_value_is_named(tmp_path):
    _chexpert_copy(tmp_path, rows=4)
    csv = tmp_path / "chexpert" / "CheXpert-v1.0-small" / "train.csv"
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.loc[2, "Edema"] = "2.0"
    table.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"train.csv line 4: column 'Edema' is '2.0'"):
        get_task("chexpert_cls").load(tmp_path)


def test_chexpert_subgroups_follow_sex_and_age_with_unknown_in_no_group(tmp_path):
    table = _chexpert_copy(tmp_path, rows=40)
    csv = tmp_path / "chexpert" / "CheXpert-v1.0-small" / "train.csv"
    test_rows = [i for i, path in enumerate(table["Path"]) if split_of(path.split("/")[2]) == "test"
                 and table["Frontal/Lateral"][i] == "Frontal"]
    written = pd.read_csv(csv, dtype=str, keep_default_na=False)
    written.loc[test_rows[0], "Sex"], written.loc[test_rows[1], "Age"] = "Unknown", ""
    written.to_csv(csv, index=False)
    task = get_task("chexpert_cls")
    test = task.load(tmp_path, cache_dir=tmp_path / "cache").test
    groups = task.subgroups(test, tmp_path)
    by_path = {row.Path: _expected(row.Sex, row.Age) for row in written.itertuples()}
    assert len(test) == len(test_rows) >= 4
    for row, sample in enumerate(test.sample_ids.tolist()):
        assert _groups_of(groups, row) == by_path[sample]
    unknown = {attribute: int((~np.logical_or.reduce(list(found.values()))).sum())
               for attribute, found in groups.items()}
    assert unknown == {"sex": 1, "age": 1}


@pytest.mark.parametrize(("column", "value", "expected"), [("Sex", "X", "sex 'X' is not one of"),
                                                           ("Age", "forty", "age 'forty' is not a number")])
def test_chexpert_bad_attribute_names_row_and_column(tmp_path, column, value, expected):
    _chexpert_copy(tmp_path, rows=4)
    csv = tmp_path / "chexpert" / "CheXpert-v1.0-small" / "train.csv"
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.loc[2, column] = value
    table.to_csv(csv, index=False)
    with pytest.raises(DataError, match=f"train.csv line 4: column '{column}': {expected}"):
        get_task("chexpert_cls").attributes(tmp_path / "chexpert")


# --- RSNA -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsna_labels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "rsna-pneumonia"
    with zipfile.ZipFile(xrv_data("kaggle_stage_2_train_labels.csv.zip")) as archive:
        archive.extract("stage_2_train_labels.csv", folder)
    return folder


def test_rsna_real_metadata_one_study_per_patient(rsna_labels):
    table = pd.read_csv(rsna_labels / "stage_2_train_labels.csv")
    studies = RsnaClassification(boxes=True).studies(rsna_labels)
    assert len(studies) == table["patientId"].nunique()
    assert sum(s.labels[0] for s in studies) == table.loc[table["Target"] == 1, "patientId"].nunique()
    two_boxes = table[table["Target"] == 1]["patientId"].value_counts().index[0]
    study = next(s for s in studies if s.patient_id == two_boxes)
    assert len(study.mask.boxes) == int((table["patientId"] == two_boxes).sum())


def test_rsna_reads_dicoms_and_box_masks(rsna_labels, tmp_path):
    table = pd.read_csv(rsna_labels / "stage_2_train_labels.csv")
    chosen = (list(table[table["Target"] == 1]["patientId"].unique()[:3])
              + list(table[table["Target"] == 0]["patientId"][:3]))
    folder = tmp_path / "rsna-pneumonia"
    folder.mkdir()
    table[table["patientId"].isin(chosen)].to_csv(folder / "stage_2_train_labels.csv", index=False)
    for number, patient in enumerate(chosen):
        write_dicom(folder / "stage_2_train_images" / f"{patient}.dcm", gradient(1024, number), patient_id=patient)
    task = RsnaClassification(boxes=True)
    splits = task.load(tmp_path)
    every = [splits.train, splits.val, splits.test]
    masks = {str(i): m for part in every for i, m in zip(part.sample_ids, part.masks)}
    labels = {str(i): int(label[0]) for part in every for i, label in zip(part.sample_ids, part.labels)}
    for patient in chosen:
        rows = table[(table["patientId"] == patient) & (table["Target"] == 1)]
        assert labels[patient] == int(len(rows) > 0)
        area = 0 if rows.empty else rows.eval("width * height").sum() / 1024**2  # boxes of one patient do not overlap
        assert abs(masks[patient].mean() - area) < 0.01


@pytest.fixture(scope="module")
def rsna_headers() -> pd.DataFrame:
    return pd.read_csv(xrv_data("kaggle_stage_2_train_images_dicom_headers.csv.gz"), dtype=str,
                       keep_default_na=False).set_index("PatientID")


def _rsna_copy(root, labels, headers: pd.DataFrame, patients: list[str], blank_sex: str | None = None) -> None:
    """Those patients' real label rows, with 256 px DICOMs carrying their real PatientSex and PatientAge."""
    folder = root / "rsna-pneumonia"
    folder.mkdir()
    labels[labels["patientId"].isin(patients)].to_csv(folder / "stage_2_train_labels.csv", index=False)
    for number, patient in enumerate(patients):
        sex = "" if patient == blank_sex else headers.at[patient, "PatientSex"]
        write_dicom(folder / "stage_2_train_images" / f"{patient}.dcm", gradient(256, number), patient_id=patient,
                    sex=sex, age=headers.at[patient, "PatientAge"])


def test_rsna_subgroups_follow_the_dicom_headers(rsna_labels, rsna_headers, tmp_path):
    labels = pd.read_csv(rsna_labels / "stage_2_train_labels.csv", dtype=str, keep_default_na=False)
    in_test = [p for p in labels["patientId"].unique()[:80] if split_of(p) == "test"][:12]
    over_125 = rsna_headers.index[pd.to_numeric(rsna_headers["PatientAge"]) > 125][0]  # the published 148
    patients = [*in_test, over_125]
    _rsna_copy(tmp_path, labels, rsna_headers, patients, blank_sex=in_test[0])
    task = get_task("rsna_cls")
    test = task.load(tmp_path).test
    groups = task.subgroups(test, tmp_path)
    for row, patient in enumerate(test.sample_ids.tolist()):
        sex = "" if patient == in_test[0] else rsna_headers.at[patient, "PatientSex"]
        assert _groups_of(groups, row) == _expected(sex, rsna_headers.at[patient, "PatientAge"])
    assert len(test) == len(in_test) + (split_of(over_125) == "test")
    assert sum(int(m.sum()) for m in groups["sex"].values()) == len(test) - 1


def test_rsna_bad_header_value_names_the_row_and_tag(rsna_labels, rsna_headers, tmp_path):
    labels = pd.read_csv(rsna_labels / "stage_2_train_labels.csv", dtype=str, keep_default_na=False)
    patient = labels["patientId"][0]
    _rsna_copy(tmp_path, labels, rsna_headers, [patient])
    dicom = tmp_path / "rsna-pneumonia" / "stage_2_train_images" / f"{patient}.dcm"
    write_dicom(dicom, gradient(256, 0), patient_id=patient, sex="X", age="40")
    task = get_task("rsna_cls")
    with pytest.raises(DataError, match=rf"stage_2_train_labels.csv line 2: DICOM .*{patient}.dcm tag PatientSex: "
                                        r"sex 'X' is not one of"):
        task.attributes_of(task.dataset_dir(tmp_path), [patient])


def test_rsna_inconsistent_target_is_named(tmp_path):
    folder = tmp_path / "rsna-pneumonia"
    folder.mkdir()
    (folder / "stage_2_train_labels.csv").write_text(
        "patientId,x,y,width,height,Target\na,10,10,5,5,1\na,,,,,0\n")
    with pytest.raises(DataError, match=r"line 3: Target 0 for a, but .*line 2 says 1"):
        get_task("rsna_cls").load(tmp_path)


# --- SIIM and CANDID-PTX: RLE -----------------------------------------------------------------

def test_rle_decoding_matches_siims_reference_on_real_rows(siim_table):
    positive = siim_table[siim_table["EncodedPixels"].str.strip() != "-1"].head(12)
    for value in positive["EncodedPixels"]:
        np.testing.assert_array_equal(decode_rle(value, "row"), reference_rle2mask(value))
    assert not decode_rle(" -1", "row").any()


@pytest.mark.parametrize("value, message", [
    ("10 5 3", "odd number"),
    ("10 five", "not a list of integers"),
    ("10 0", "not positive"),
    ("1048570 10", "outside the 1024x1024 image"),
])
def test_malformed_rle_is_refused(value, message):
    with pytest.raises(DataError, match=f"train-rle.csv line 9: .*{message}"):
        decode_rle(value, "train-rle.csv line 9")


def _siim_copy(tmp_path, table: pd.DataFrame, ids: list[str]) -> None:
    folder = tmp_path / "siim-acr-pneumothorax"
    folder.mkdir(parents=True)
    part = table[table["ImageId"].isin(ids)].rename(columns={"EncodedPixels": " EncodedPixels"})
    part.to_csv(folder / "train-rle.csv", index=False)
    for number, image_id in enumerate(ids):
        nested = folder / "dicom-images-train" / f"study{number}" / f"series{number}"
        write_dicom(nested / f"{image_id}.dcm", gradient(1024, number), patient_id=f"patient-{number}")


def test_siim_unites_regions_of_real_rows(tmp_path, siim_table):
    counts = siim_table["ImageId"].value_counts()
    several = list(counts[counts >= 3].index[:2])
    empty = list(siim_table[siim_table["EncodedPixels"].str.strip() == "-1"]["ImageId"][:2])
    _siim_copy(tmp_path, siim_table, several + empty)
    task = get_task("siim_seg")
    splits = task.load(tmp_path, cache_dir=tmp_path / "cache")
    every = [splits.train, splits.val, splits.test]
    masks = {str(i): m for part in every for i, m in zip(part.sample_ids, part.masks)}
    assert len(masks) == 4
    for image_id in several:
        rows = siim_table.loc[siim_table["ImageId"] == image_id, "EncodedPixels"]
        union = np.logical_or.reduce([reference_rle2mask(v) for v in rows])
        largest_only = max((reference_rle2mask(v) for v in rows), key=np.sum)
        np.testing.assert_array_equal(masks[image_id], resize_mask(union, 256))
        assert masks[image_id].sum() > resize_mask(largest_only, 256).sum()  # united, not overwritten
    for image_id in empty:
        assert not masks[image_id].any()


def test_siim_subgroups_follow_the_dicom_headers(tmp_path, siim_table):
    ids = [i for i in siim_table["ImageId"].unique()[:200] if split_of(f"patient-{i}") == "test"][:6]
    tags = [("M", "034"), ("F", "061"), ("", "045"), ("F", ""), ("M", "060"), ("F", "012")]
    folder = tmp_path / "siim-acr-pneumothorax"
    folder.mkdir()
    siim_table[siim_table["ImageId"].isin(ids)].to_csv(folder / "train-rle.csv", index=False)
    for number, (image_id, (sex, age)) in enumerate(zip(ids, tags, strict=True)):
        write_dicom(folder / "images" / f"{image_id}.dcm", gradient(1024, number), patient_id=f"patient-{image_id}",
                    sex=sex, age=age)
    task = get_task("siim_seg")
    test = task.load(tmp_path).test
    groups = task.subgroups(test, tmp_path)
    expected = {image_id: _expected(sex, age) for image_id, (sex, age) in zip(ids, tags, strict=True)}
    assert sorted(test.sample_ids.tolist()) == sorted(ids)
    for row, image_id in enumerate(test.sample_ids.tolist()):
        assert _groups_of(groups, row) == expected[image_id]


def test_siim_real_metadata_counts(siim_table):
    positive = siim_table[siim_table["EncodedPixels"].str.strip() != "-1"]["ImageId"].nunique()
    assert siim_table["ImageId"].nunique() > positive > 2000


def test_siim_missing_dicom_and_wrong_size_are_named(tmp_path, siim_table):
    ids = list(siim_table["ImageId"][:3])
    _siim_copy(tmp_path, siim_table, ids)
    dicoms = sorted((tmp_path / "siim-acr-pneumothorax").rglob("*.dcm"))
    dicoms[0].unlink()
    with pytest.raises(DataError, match=r"train-rle.csv line \d+: no DICOM named"):
        get_task("siim_seg").load(tmp_path)
    write_dicom(dicoms[0], gradient(512, 0))
    positive = siim_table[siim_table["EncodedPixels"].str.strip() != "-1"]["ImageId"]
    if not positive.isin([dicoms[0].stem]).any():
        (tmp_path / "siim-acr-pneumothorax" / "train-rle.csv").write_text(
            f"ImageId, EncodedPixels\n{dicoms[0].stem},10 20\n")
    with pytest.raises(DataError, match=r"line \d+: image is 512x512 pixels, the RLE grid is 1024x1024"):
        get_task("siim_seg").load(tmp_path)


def test_candid_in_its_documented_format(tmp_path):
    folder = tmp_path / "candid-ptx"
    square = np.zeros((1024, 1024), bool)
    square[100:200, 300:400] = True
    strip = np.zeros((1024, 1024), bool)
    strip[500:520, :] = True

    def encode(mask: np.ndarray) -> str:  # independent encoder: column-major runs, relative offsets
        flat = np.concatenate([[0], mask.T.ravel().astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(flat))
        starts, ends = edges[0::2], edges[1::2]
        gaps = starts - np.concatenate([[0], ends[:-1]])
        return " ".join(f"{g} {e - s}" for g, s, e in zip(gaps, starts, ends))

    rows = [("1.2.3.1", "a.dcm", encode(square), "small apical pneumothorax"),
            ("1.2.3.1", "a.dcm", encode(strip), "and a basal one"),
            ("1.2.3.2", "b.dcm", "-1", "no pneumothorax")]
    folder.mkdir()
    pd.DataFrame(rows, columns=["SOPInstanceUID", "filename", "EncodedPixels", "Report"]).to_csv(
        folder / "Pneumothorax_reports.csv", index=False)
    write_dicom(folder / "images" / "a.dcm", gradient(1024, 1), patient_id="A")
    write_dicom(folder / "images" / "b.dcm", gradient(1024, 2), patient_id="B")
    splits = get_task("candid_seg").load(tmp_path)
    every = [splits.train, splits.val, splits.test]
    masks = {str(i): m for part in every for i, m in zip(part.sample_ids, part.masks)}
    np.testing.assert_array_equal(masks["a"], resize_mask(square | strip, 256))
    assert not masks["b"].any()


# --- DICOM pixels -----------------------------------------------------------------------------

def test_dicom_bits_stored_window_and_monochrome1(tmp_path):
    pixels = gradient(64, 0) & 0x0FFF
    noisy = pixels | 0xF000  # garbage above BitsStored = 12 must be ignored
    plain = read_image(write_dicom(tmp_path / "a.dcm", noisy), "a")
    np.testing.assert_allclose(plain, (pixels - pixels.min()) / np.ptp(pixels), atol=1e-6)
    inverted = read_image(write_dicom(tmp_path / "b.dcm", pixels, photometric="MONOCHROME1"), "b")
    np.testing.assert_allclose(inverted, 1 - plain, atol=1e-6)
    center = float(np.median(pixels))
    windowed = read_image(write_dicom(tmp_path / "c.dcm", pixels, window=(center, 200)), "c")
    assert windowed[pixels < center - 150].max() == 0 and windowed[pixels > center + 150].min() == 1


def test_truncated_dicom_is_named(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", gradient(64, 0))
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DataError, match=r"some.csv line 5: cannot read DICOM .*a.dcm"):
        read_image(path, "some.csv line 5")
