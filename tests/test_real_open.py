"""Open-suite loaders on the real copies in ../shared/data, and on broken copies of them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from cxrbench.errors import DataError
from cxrbench.registry import get_task, suite_tasks
from cxrbench.samples import Splits
from cxrbench.tasks.real.open_suite import kermany_patient
from cxrbench.tasks.splits import split_of

from .real_data import covid_subset, kermany_subset, shared_dataset


def test_open_suite_is_registered():
    assert suite_tasks("open") == ["covid_lung_seg", "pneumonia_cls"]


@pytest.mark.parametrize("name, patient, subtype", [
    ("person1000_bacteria_2931", "person1000", "bacteria"),
    ("person447_virus_921_1", "person447", "virus"),
    ("IM-0115-0001", "IM-0115", "normal"),
    ("IM-0429-0001-0002", "IM-0429", "normal"),
    ("NORMAL2-IM-1427-0001", "NORMAL2-IM-1427", "normal"),
])
def test_kermany_patient_id_comes_from_the_file_name(name, patient, subtype, tmp_path):
    assert kermany_patient(tmp_path / f"{name}.jpeg") == (patient, subtype)


def test_every_kermany_image_is_found_and_patients_stay_in_one_split():
    folder = shared_dataset("pneumonia-kermany")
    task = get_task("pneumonia_cls")
    studies = task.studies(folder)
    assert len(studies) == 1341 + 3875  # the copy's README
    assert sum(s.labels[0] for s in studies) == 3875
    patients: dict[str, set[str]] = {}
    for study in studies:
        patients.setdefault(study.patient_id, set()).add(split_of(study.patient_id))
    assert len(patients) < len(studies)  # several images per patient: splitting by image would leak
    assert all(len(splits) == 1 for splits in patients.values())


def test_pneumonia_loads_real_pixels_and_reads_them_back_from_the_cache(tmp_path):
    kermany_subset(tmp_path / "data", per_class=30)
    task = get_task("pneumonia_cls")
    splits = task.load(tmp_path / "data", cache_dir=tmp_path / "cache")
    everything = [splits.train, splits.val, splits.test]
    assert sum(len(s) for s in everything) == 60
    for part in everything:
        assert part.images.shape[1:] == (64, 64) and part.images.dtype == np.float32
        assert 0 <= part.images.min() and part.images.max() <= 1 and part.images.std() > 0.1
    assert {0, 1} <= set(np.concatenate([s.labels[:, 0] for s in everything]).tolist())
    from PIL import Image

    files = {path.stem: path for path in (tmp_path / "data").rglob("*.jpeg")}
    for part in everything:  # each image is its own file's pixels (another file of the set is >= 0.05 away)
        for sample_id, image in zip(part.sample_ids, part.images):
            with Image.open(files[str(sample_id)]) as original:
                expected = np.asarray(original.convert("L").resize((64, 64)), np.float32) / 255
            assert np.abs(image - expected).mean() < 0.02, sample_id
    again = get_task("pneumonia_cls").load(tmp_path / "data", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.test.images, splits.test.images)
    assert any((tmp_path / "cache" / "pixels").rglob("images.npy"))


def test_covid_lungs_give_binary_masks_the_size_of_the_images(tmp_path):
    folder = covid_subset(tmp_path, rows=24)
    splits = get_task("covid_lung_seg").load(tmp_path)
    for part in (splits.train, splits.val, splits.test):
        assert part.masks is not None and part.masks.dtype == bool and part.masks.shape == part.images.shape
    masks = np.concatenate([splits.train.masks, splits.val.masks, splits.test.masks])
    assert len(masks) == 24
    assert 0.15 < masks.mean() < 0.6  # lungs fill a large part of a frontal film
    from pathlib import Path

    from PIL import Image

    table = pd.read_csv(folder / "metadata.csv", dtype=str)
    mask_file = {Path(image).stem: folder / mask for image, mask in zip(table["image"], table["mask"])}
    for part in (splits.train, splits.val, splits.test):  # each its own image's mask (measured IoU >= 0.976)
        for sample_id, mask in zip(part.sample_ids, part.masks):
            with Image.open(mask_file[str(sample_id)]) as full:
                expected = np.asarray(full.convert("L").resize((64, 64), Image.Resampling.NEAREST)) > 127
            assert (mask & expected).sum() / (mask | expected).sum() > 0.95, sample_id
    formats = {p.suffix for p in (folder / "images").iterdir()}
    assert formats == {".jpg", ".png"}


def test_covid_patients_follow_the_metadata_column():
    table = pd.read_csv(shared_dataset("covid-lungs") / "metadata.csv", dtype=str)
    studies = get_task("covid_lung_seg").studies(shared_dataset("covid-lungs"))
    assert [s.patient_id for s in studies] == table["patientid"].tolist()


def test_missing_data_root_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.delenv("CXRBENCH_DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="--data-root"):
        get_task("pneumonia_cls").load(None)
    with pytest.raises(DataError, match=f"no folder {tmp_path / 'covid-lungs'}"):
        get_task("covid_lung_seg").load(tmp_path)


def test_data_root_comes_from_the_environment(tmp_path, monkeypatch):
    covid_subset(tmp_path, rows=6)
    monkeypatch.setenv("CXRBENCH_DATA_ROOT", str(tmp_path))
    task = get_task("covid_lung_seg")
    splits = task.load(None)
    assert sum(len(part) for part in (splits.train, splits.val, splits.test)) == 6
    assert task.fingerprint(None) == task.fingerprint(tmp_path)


def _broken_covid(tmp_path, edit):
    folder = covid_subset(tmp_path, rows=6)
    table = pd.read_csv(folder / "metadata.csv", dtype=str, keep_default_na=False)
    edited = edit(folder, table)
    table = table if edited is None else edited
    table.to_csv(folder / "metadata.csv", index=False)
    return folder


def test_missing_image_names_the_file_and_line(tmp_path):
    def drop_third_image(folder, table):
        (folder / table.loc[2, "image"]).unlink()

    _broken_covid(tmp_path, drop_third_image)
    with pytest.raises(DataError, match=r"metadata.csv line 4: image file .* does not exist"):
        get_task("covid_lung_seg").load(tmp_path)


def test_truncated_image_names_the_file_and_line(tmp_path):
    def truncate_second_image(folder, table):
        path = folder / table.loc[1, "image"]
        path.write_bytes(path.read_bytes()[:200])

    _broken_covid(tmp_path, truncate_second_image)
    with pytest.raises(DataError, match=r"metadata.csv line 3: cannot read image .*images/"):
        get_task("covid_lung_seg").load(tmp_path)


def test_missing_column_is_named(tmp_path):
    _broken_covid(tmp_path, lambda folder, table: table.rename(columns={"patientid": "patient"}))
    with pytest.raises(DataError, match=r"missing column\(s\) \['patientid'\]"):
        get_task("covid_lung_seg").load(tmp_path)


def test_blank_patient_is_named(tmp_path):
    _broken_covid(tmp_path, lambda folder, table: table.__setitem__("patientid", ["1", "2", "", "4", "5", "6"]))
    with pytest.raises(DataError, match=r"line 4: column 'patientid' is blank"):
        get_task("covid_lung_seg").load(tmp_path)


def test_mask_of_another_size_is_named(tmp_path):
    from PIL import Image

    def shrink_first_mask(folder, table):
        path = folder / table.loc[0, "mask"]
        with Image.open(path) as mask:
            small = mask.resize((mask.width // 2, mask.height // 2))
        path.unlink()
        small.save(path)

    _broken_covid(tmp_path, shrink_first_mask)
    with pytest.raises(DataError, match=r"line 2: mask .* pixels, its image is"):
        get_task("covid_lung_seg").load(tmp_path)


def test_an_image_listed_under_two_patients_is_refused(tmp_path):
    def duplicate_row(folder, table):
        table.loc[5, "image"] = table.loc[0, "image"]
        table.loc[5, "mask"] = table.loc[0, "mask"]

    _broken_covid(tmp_path, duplicate_row)
    with pytest.raises(DataError, match=r"line 7: image .* is listed twice \(first at .*line 2"):
        get_task("covid_lung_seg").load(tmp_path)


def test_a_patient_in_two_splits_is_refused(tmp_path):
    covid_subset(tmp_path, rows=12)
    splits = get_task("covid_lung_seg").load(tmp_path)
    moved = splits.test.subset([0])
    with pytest.raises(DataError, match="in both train and test"):
        Splits(train=type(moved).concat([splits.train, moved]), val=splits.val, test=splits.test)


def test_kermany_file_whose_name_contradicts_its_folder_is_refused(tmp_path):
    folder = kermany_subset(tmp_path, per_class=2)
    source = next((folder / "train" / "PNEUMONIA").iterdir())
    (folder / "train" / "NORMAL" / source.name).write_bytes(source.read_bytes())
    with pytest.raises(DataError, match=rf"NORMAL/{source.name}: a (bacteria|virus) file name inside a NORMAL/ folder"):
        get_task("pneumonia_cls").load(tmp_path)


def test_kermany_skipped_files_are_reported(tmp_path, caplog):
    folder = kermany_subset(tmp_path, per_class=2)
    (folder / "train" / "NORMAL" / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        studies = get_task("pneumonia_cls").studies(folder)
    assert len(studies) == 4
    assert "skipped 1 file(s)" in caplog.text and "notes.txt (not a JPEG or PNG image)" in caplog.text


@pytest.mark.slow
def test_open_suite_runs_end_to_end_with_the_pixel_cache(tmp_path, monkeypatch):
    from cxrbench.runner import run
    from cxrbench.schemas import RunConfig
    from cxrbench.tasks.downstream.training import Schedule
    from cxrbench.tasks.real.open_suite import PneumoniaKermany

    monkeypatch.setattr(PneumoniaKermany, "schedule", Schedule(steps=3, batch_size=8, learning_rate=1e-3))
    kermany_subset(tmp_path / "data", per_class=25)
    # 50 images hold fewer training images than the scarce regime's 100, which a run refuses: a size of its own
    config = RunConfig(tasks=["pneumonia_cls"], generators=["classic_aug"], seeds=2, n_boot=100,
                       data_root=tmp_path / "data", train_size=20, quality=False)
    result = run(config, tmp_path / "cache", workers=1, show_progress=False)
    (task,) = result.tasks
    assert task.n_train_real == 20 and task.n_val + task.n_test > 0
    assert len(task.comparisons) == 1 and 0 <= task.baseline.mean <= 1
    assert len(list((tmp_path / "cache" / "pixels").rglob("images.npy"))) == 3  # one chunk per split
