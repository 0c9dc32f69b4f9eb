"""`cxrbench calibrate`: A/A rates and coverage from trainings scored on the task's test set and on fresh patients."""

import pytest

from cxrbench.calibration import calibrate
from cxrbench.errors import ConfigError
from cxrbench.registry import get_task
from cxrbench.tasks.downstream.training import Schedule
from cxrbench.tasks.embedded.tasks import PhantomClassification


def test_fresh_patients_are_new_patients_of_the_same_renderer():
    task = get_task("phantom_cls")
    fresh = task.fresh_patients(30)
    splits = task.load(None, train_size=None)
    known = {p for part in (splits.train, splits.val, splits.test) for p in part.patient_ids.tolist()}
    assert len(set(fresh.patient_ids.tolist())) == 30 and not known & set(fresh.patient_ids.tolist())
    assert fresh.images.shape[1:] == splits.test.images.shape[1:] and fresh.labels.shape[1] == 4


@pytest.mark.slow
def test_calibration_counts_pairs_and_intervals_and_stores_the_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(PhantomClassification, "schedule", Schedule(steps=3, batch_size=8, learning_rate=1e-3))
    result = calibrate("phantom_cls", "scarce", ["real_extra"], seeds=6, group_size=2, cache_root=tmp_path,
                       workers=1, fresh_patients=20, n_boot=100)
    assert result.aa_comparisons == 3 and result.controls[0].intervals == 3  # 3 groups of 2: 3 pairs
    for rates in (result.aa_false_positive_rate, result.controls[0].coverage):
        assert all(value in (0, 1 / 3, 2 / 3, 1) or abs(value * 3 - round(value * 3)) < 1e-9
                   for value in rates.model_dump().values())
    stored = list(tmp_path.glob("downstream/*/*/_COMPLETE.json"))
    assert len(stored) == 12  # every training is also a cell a later run reuses


def test_only_simulated_tasks_and_enough_seeds(tmp_path):
    with pytest.raises(ConfigError, match="fewer than two groups of 5"):
        calibrate("phantom_cls", "scarce", ["oracle"], seeds=8, group_size=5, cache_root=tmp_path, workers=1)
