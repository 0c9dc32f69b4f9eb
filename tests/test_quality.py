"""Every run reports each synthetic arm's fidelity, memorisation and re-identification (`benchmark/quality.py`).

One tiny run of phantom_cls and phantom_seg with three arms: oracle (fresh phantoms), noise, and a memorising
generator that returns its training images with slight noise, which must be flagged where oracle is not."""

from __future__ import annotations

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from cxrbench import quality
from cxrbench.cache import Cache
from cxrbench.cli import app
from cxrbench.fidelity.patient_pairs import TINY_VERIFIER
from cxrbench.report import markdown, rich_report
from cxrbench.runner import run
from cxrbench.schemas import RunConfig, RunResult
from cxrbench.tasks.embedded.tasks import PhantomClassification

from .conftest import TINY
from .fake_plugins import install_distribution, on_path

MEMORISING = '''
import numpy as np

from cxrbench.conditions import MaskCondition
from cxrbench.generator import Generator
from cxrbench.schemas import GeneratorMeta


class Memorising(Generator):
    """Copies of its training images with slight noise: the image of a mask condition's source, else a training
    image whose labels match the request most closely (cycling through the ties)."""

    meta = GeneratorMeta(name="memorising", version="1", role="control", conditioning=["label", "mask"],
                         description="Training images plus slight noise (a test's memorising generator).")

    def fit(self, train, *, seed, workdir):
        self._train = train
        self._row_of = {str(s): i for i, s in enumerate(train.sample_ids)}

    def generate(self, conditions, *, seed, batch_size=64):
        rng = np.random.default_rng(seed)
        rows = [self._row(c, i) for i, c in enumerate(conditions)]
        images = self._train.images[rows] + rng.normal(0, 0.005, (len(rows), *self._train.images.shape[1:]))
        return np.clip(images, 0, 1).astype(np.float32)

    def _row(self, condition, i):
        if isinstance(condition, MaskCondition):
            return self._row_of[condition.source_id]
        wanted = np.array([condition.labels[name] for name in self.task.labels])
        distance = np.abs(self._train.labels - wanted).sum(axis=1)
        ties = np.flatnonzero(distance == distance.min())
        return int(ties[i % len(ties)])
'''


@pytest.fixture(scope="module")
def memorising_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_distribution(site, "cxrbench-memorising", "1", {"memorisingpkg/__init__.py": MEMORISING},
                         {"memorising": "memorisingpkg:Memorising"})
    with on_path(site):
        yield site


@pytest.fixture(scope="module")
def quality_run(memorising_site, tmp_path_factory):
    cache = tmp_path_factory.mktemp("quality-cache")
    config = RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["oracle", "noise", "memorising"],
                       **TINY | {"quality": True})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality, "VERIFIER_SETTINGS", TINY_VERIFIER)
        result = run(config, cache, workers=1, show_progress=False)
    return config, cache, result


def _by_generator(task):
    return {q.generator: q for q in task.quality}


def test_every_synthetic_arm_has_its_quality_in_one_feature_space(quality_run):
    _, _, result = quality_run
    for task in result.tasks:
        assert sorted(_by_generator(task)) == ["memorising", "noise", "oracle"]  # not real_only
        identities = {q.extractor for q in task.quality}
        assert len(identities) == 1 and next(iter(identities)).name == "in_domain"
        for q in task.quality:
            assert q.seed == 0 and q.ratio == TINY["ratios"][0]
            assert q.n_real_train == TINY["train_size"] and q.n_real_test == task.n_test
            assert set(q.memorisation) == {"features", "pixels"}
            assert q.reidentification is not None
    groups = {task.task.name: set(task.quality[0].fidelity_by_group) for task in result.tasks}
    assert groups["phantom_seg"] == {"with finding", "without finding"}
    assert "no finding" in groups["phantom_cls"] and len(groups["phantom_cls"]) > 2


def test_the_memorising_generator_is_flagged_and_oracle_is_not(quality_run):
    _, _, result = quality_run
    for task in result.tasks:
        arms = _by_generator(task)
        copied, fresh = arms["memorising"], arms["oracle"]
        for space in ("features", "pixels"):
            assert copied.memorisation[space].share_below.value >= 0.9, (task.task.name, space)
            assert copied.memorisation[space].p_value < 1e-6
            assert fresh.memorisation[space].p_value > 1e-3, (task.task.name, space)
        # The tiny verifier (150 steps on a dozen patients) is weak: the copies are flagged by their interval lying
        # above the calibrated rate, not by a majority (the default verifier flags all: docs/fidelity.md).
        reidentified = copied.reidentification
        assert reidentified.share_above.ci_low > reidentified.expected_share, task.task.name
        assert reidentified.p_value < 0.01, task.task.name
        assert fresh.reidentification.p_value > 1e-3, task.task.name
        assert fresh.reidentification.share_above.value < copied.reidentification.share_above.value
        assert arms["noise"].fidelity.fid.value > fresh.fidelity.fid.value


def test_a_rerun_computes_no_quality(quality_run, monkeypatch):
    config, cache, result = quality_run
    monkeypatch.setattr(quality, "VERIFIER_SETTINGS", TINY_VERIFIER)
    monkeypatch.setattr(quality, "measure", lambda *a, **k: pytest.fail("quality measured again"))
    again = run(config, cache, workers=1, show_progress=False)
    assert [t.quality for t in again.tasks] == [t.quality for t in result.tasks]


def test_no_quality_leaves_it_empty(quality_run, monkeypatch):
    config, cache, _ = quality_run
    monkeypatch.setattr(quality, "assess_run", lambda *a, **k: pytest.fail("quality assessed"))
    result = run(config.model_copy(update={"quality": False, "tasks": ["phantom_cls"]}), cache, workers=1,
                 show_progress=False)
    assert all(task.quality == [] for task in result.tasks)


def test_quality_is_measured_by_default_in_a_protocol_run_only_and_no_quality_skips_it(tmp_path, monkeypatch):
    """A smoke run checks the Δs alone unless asked for quality; `--no-quality` leaves any run's quality empty (a tiny
    run of noise, its recipe cut to two steps)."""
    def config(**given) -> RunConfig:
        return RunConfig(tasks=["phantom_cls"], generators=["noise"], **given)

    assert config().quality and config(profile="protocol").quality and not config(profile="smoke").quality
    assert config(profile="smoke", quality=True).quality and not config(quality=False).quality
    monkeypatch.setattr(PhantomClassification, "schedule", replace(PhantomClassification.schedule, steps=2))
    monkeypatch.setattr(quality, "assess_run", lambda *a, **k: pytest.fail("quality assessed"))
    out = tmp_path / "r.json"
    done = CliRunner().invoke(app, ["run", "--task", "phantom_cls", "--generator", "noise", "--train-size", "8",
                                    "--seeds", "2", "--ratios", "0.5", "--n-boot", "100", "--workers", "1",
                                    "--no-quality", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert done.exit_code == 0, done.output
    result = RunResult.model_validate_json(out.read_text())
    assert not result.config.quality and [task.quality for task in result.tasks] == [[]]


def test_report_shows_the_quality_table(quality_run):
    from rich.console import Console

    _, _, result = quality_run
    console = Console(width=200, record=True)
    console.print(rich_report(result))
    text = console.export_text()
    assert "fidelity and privacy" in text and "memorising" in text
    table = markdown(result)
    assert "**fidelity and privacy**" in table
    row = next(line for line in table.splitlines() if line.startswith("| phantom_cls") and "memorising" in line
               and "%" in line)
    assert "*" in row  # flagged


def test_a_result_without_quality_still_loads(quality_run):
    _, _, result = quality_run
    old = result.model_dump(mode="json")
    for task in old["tasks"]:
        del task["quality"]
    for field in ("quality", "feature_extractor"):
        del old["config"][field]
    loaded = RunResult.model_validate(old)
    assert all(task.quality == [] for task in loaded.tasks) and loaded.config.quality


def test_quality_is_cached_under_its_own_stage(quality_run):
    _, cache, result = quality_run
    stored = list(Cache(cache).root.glob("quality/*/*"))
    assert len(stored) == sum(len(task.quality) for task in result.tasks)
