"""Issue 18: each suite's pretraining pool, what a generator may declare it learnt from, and the reference LDM's
pretrain-then-adapt chain (one pretrained fit shared by every regime and seed)."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrbench.cache import Cache
from cxrbench.errors import DataError, GeneratorError
from cxrbench.fitting import ready_generator
from cxrbench.generators.ldm.generator import LatentDiffusionGenerator
from cxrbench.plan import checked_config, fit_key, plan_task, plan_tasks
from cxrbench.registry import generator_class, get_task
from cxrbench.schemas import DatasetRef, RunConfig
from cxrbench.task import Task
from cxrbench.task_data import load_pretraining_pool
from cxrbench.tasks.embedded.tasks import PhantomSegmentation

from .real_data import covid_subset, kermany_subset
from .test_bad_inputs import _refused_in_one_line, tripwire  # noqa: F401 (a fixture)


def _disjoint_by_patient(task: Task, root, train_size: int | None, cache_dir=None) -> int:
    """Asserts the regime's pretraining pool shares no patient with its training subset, val or test; its size."""
    splits = task.load(root, train_size=train_size, cache_dir=cache_dir)
    pool = task.pretraining_pool(root, train_size=train_size, cache_dir=cache_dir)
    pooled = set(pool.patient_ids.tolist())
    for name in ("train", "val", "test"):
        assert not pooled & set(getattr(splits, name).patient_ids.tolist()), name
    return len(pool)


@pytest.mark.parametrize("task_name", ["phantom_cls", "phantom_seg"])
def test_the_embedded_pool_is_another_population_the_same_in_every_regime(task_name):
    task = get_task(task_name)
    sizes = [_disjoint_by_patient(task, None, size) for size in task.meta.regimes.values()]
    pool = task.pretraining_pool(None, train_size=None)
    assert sizes[0] == sizes[-1] == len(pool) > 2 * len(task.load(None).train)  # larger than the whole train split
    assert all(pid.startswith("public-") for pid in pool.patient_ids.tolist())
    assert (pool.masks is not None) == (task.meta.kind == "segmentation")
    regimes = [task.pretraining_fingerprint(None, train_size=size) for size in task.meta.regimes.values()]
    other = get_task("phantom_seg" if task_name == "phantom_cls" else "phantom_cls")
    assert regimes[0] == regimes[-1] != other.pretraining_fingerprint(None, train_size=None)


@pytest.mark.parametrize("task_name, build", [("pneumonia_cls", lambda root: kermany_subset(root, 40)),
                                              ("covid_lung_seg", lambda root: covid_subset(root, 60))])
def test_the_open_pool_is_the_training_split_outside_the_regimes_subset(task_name, build, tmp_path):
    build(tmp_path)
    task, cache = get_task(task_name), tmp_path / "cache"
    size = _disjoint_by_patient(task, tmp_path, 10, cache)
    assert size == len(task.pool(tmp_path, train_size=10, cache_dir=cache)) > 0
    fingerprints = [task.pretraining_fingerprint(tmp_path, train_size=n) for n in (10, 12)]
    assert fingerprints[0] != fingerprints[1]


def test_a_pretrained_ldm_trains_from_scratch_in_an_open_regime_without_a_pool(tmp_path, caplog):
    """The open suite's whole-training-split regime leaves no image outside it to pretrain on: there the pretrained
    LDM's arm is the scratch one (its config, fit key and revision), said in a warning; the scarce regime pretrains."""
    covid_subset(tmp_path, 60)
    config = RunConfig(tasks=["covid_lung_seg"], generators=["ldm_mask"], data_root=tmp_path,
                       generator_config={"ldm_mask": {"preset": "tiny", "init": "pretrained"}})
    scratch = RunConfig(tasks=["covid_lung_seg"], generators=["ldm_mask"], data_root=tmp_path,
                        generator_config={"ldm_mask": {"preset": "tiny", "init": "scratch"}})
    arms = {plan.regime: plan.arms[0] for plan in plan_tasks(config, tmp_path / "cache")}
    scratch_full = next(plan for plan in plan_tasks(scratch, tmp_path / "cache") if plan.regime == "full").arms[0]
    assert arms["full"].cells[0].generator_config["init"] == "scratch"
    assert arms["full"].cells[0].fit_key == scratch_full.cells[0].fit_key
    assert arms["full"].revision == scratch_full.revision
    assert arms["scarce"].cells[0].generator_config["init"] == "pretrained"
    assert "ldm_mask trains from scratch in regime full of covid_lung_seg" in caplog.text


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("task_name", ["siim_seg", "chexpert_cls"])
def test_a_paper_task_without_its_corpus_folder_is_refused_in_one_line(task_name, tmp_path):
    task = get_task(task_name)
    with pytest.raises(DataError, match=f"task {task_name}: no pretraining corpus at {tmp_path}/pretraining/"
                                        f"{task.folder}; put one there laid out like the task's dataset"):
        task.pretraining_pool(tmp_path, train_size=task.meta.regimes["scarce"])


def _declaring(monkeypatch, *refs: DatasetRef) -> None:
    cls = generator_class("noise")
    monkeypatch.setattr(cls, "meta", cls.meta.model_copy(update={"trained_on": list(refs)}))


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("dataset, split", [("phantom_seg", "test"), ("embedded", "val"), ("phantom_seg", "all"),
                                            ("PHANTOM_SEG", "Test")])
@pytest.mark.usefixtures("tripwire")
def test_a_declared_training_set_touching_val_or_test_is_refused_in_one_line(dataset, split, monkeypatch, tmp_path):
    _declaring(monkeypatch, DatasetRef(dataset="phantom_seg", split="pretraining"), DatasetRef(dataset=dataset,
                                                                                                split=split))
    _refused_in_one_line(["run", "-g", "noise", "--task", "phantom_seg", "--cache-dir", str(tmp_path / "cache")],
                         f"noise declares it was trained on {dataset}/{split}: data of task phantom_seg beyond its "
                         f"train split and pretraining pool")


@pytest.mark.parametrize("dataset", ["phantom_seg", "embedded"])
def test_the_pretraining_pool_is_a_declarable_training_set(dataset, monkeypatch):
    _declaring(monkeypatch, DatasetRef(dataset=dataset, split="pretraining"), DatasetRef(dataset=dataset,
                                                                                         split="train"))
    assert checked_config(RunConfig(tasks=["phantom_seg"], generators=["noise"])).tasks == ["phantom_seg"]


@pytest.fixture
def one_thread():
    """The tiny models' steps are too small to share between threads: on a busy machine two threads wait on each
    other for seconds a step."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_the_pretrained_fit_is_made_once_for_every_regime_and_seed(monkeypatch, tmp_path):
    """Two regimes x two seeds of ldm_mask under `init: pretrained`: one fit on the pool, one fine-tuning per
    regime; the plan's fit keys are the ones fitting writes, and `init: scratch` keeps today's key."""
    calls = {"pretrained": 0, "finetuned": 0}
    fit, finetune = LatentDiffusionGenerator._fit, LatentDiffusionGenerator._finetune

    def counted(name, method):
        def wrapper(self, *args):
            calls[name] += 1
            return method(self, *args)
        return wrapper

    monkeypatch.setattr(LatentDiffusionGenerator, "_fit", counted("pretrained", fit))
    monkeypatch.setattr(LatentDiffusionGenerator, "_finetune", counted("finetuned", finetune))
    monkeypatch.setattr(PhantomSegmentation, "pretraining_patients", 30)  # seconds, not minutes, to pretrain on
    load_pretraining_pool.cache_clear()
    cache = Cache(tmp_path / "cache")
    options = {"preset": "tiny", "init": "pretrained"}
    config = RunConfig(tasks=["phantom_seg"], generators=["ldm_mask"], generator_config={"ldm_mask": options},
                       seeds=2, ratios=[0.5])
    finetuned = {}
    for regime in ("scarce", "full"):
        plan = plan_task("phantom_seg", regime, get_task("phantom_seg").meta.regimes[regime], config, cache.root)
        cells = plan.arms[0].cells
        assert [c.seed for c in cells] == [0, 1]
        for cell in cells:
            generator = ready_generator(cell, cache, plan.splits.train)
            assert generator.revision() == plan.arms[0].revision
        finetuned[regime] = cells[0].fit_key
    assert calls == {"pretrained": 1, "finetuned": 2}
    assert finetuned["scarce"] != finetuned["full"]
    assert len(list((cache.root / "fit").iterdir())) == 3

    load_pretraining_pool.cache_clear()
    scratch = config.model_copy(update={"generator_config": {"ldm_mask": {"preset": "tiny"}}})
    explicit = scratch.model_copy(update={"generator_config": {"ldm_mask": {"preset": "tiny", "init": "scratch"}}})
    keys = [plan_task("phantom_seg", "scarce", 20, c, cache.root).arms[0].cells[0].fit_key for c in (scratch, explicit)]
    assert keys[0] == keys[1] != finetuned["scarce"]  # scratch, given or not, is today's fit


def test_a_pretrained_ldm_fine_tunes_only_its_own_pool_fit():
    meta = get_task("phantom_cls").meta
    generator = generator_class("ldm_text")(meta, preset="tiny", init="pretrained")
    assert generator.pretrains() and generator.refines().fit_source == "pretraining"
    assert generator_class("ldm_text")(meta, preset="tiny").refines() is None
    with pytest.raises(GeneratorError, match="ldm_text fine-tunes its own fit on the pretraining pool, not ldm_text's"):
        generator.start_from(generator_class("ldm_text")(meta, preset="tiny"))
    proxy = generator_class("ldm_text_proxy")(meta, preset="tiny", init="pretrained", refine={"rounds": 0})
    pool_fit = [fit_key(g.refines(), "train data", lambda: "pool data") for g in (generator, proxy.refines())]
    assert pool_fit[0] == pool_fit[1]  # the proxy variant refines on top of the same pretrained fit


def _chexpert_with_corpus(tmp_path, overlapping: bool) -> None:
    """A 30-row CheXpert copy and a corpus of its first 60 rows in pretraining/, without the copy's patients
    unless `overlapping`."""
    from .test_real_paper import _chexpert_copy

    task_rows = _chexpert_copy(tmp_path, rows=30)
    _chexpert_copy(tmp_path / "pretraining", rows=60)
    if not overlapping:
        csv = tmp_path / "pretraining" / "chexpert" / "CheXpert-v1.0-small" / "train.csv"
        corpus = pd.read_csv(csv, dtype=str, keep_default_na=False)
        patient = corpus["Path"].str.extract(r"(patient\d+)", expand=False)
        corpus[~patient.isin(task_rows["Path"].str.extract(r"(patient\d+)", expand=False))].to_csv(csv, index=False)


def test_a_paper_corpus_of_other_patients_is_the_pool(tmp_path):
    _chexpert_with_corpus(tmp_path, overlapping=False)
    size = _disjoint_by_patient(get_task("chexpert_cls"), tmp_path, 10, tmp_path / "cache")
    assert size > 0


@pytest.mark.reliability("bad_input")
def test_a_paper_corpus_sharing_a_patient_with_the_task_is_refused_in_one_line(tmp_path):
    _chexpert_with_corpus(tmp_path, overlapping=True)
    with pytest.raises(DataError, match=rf"task chexpert_cls: the pretraining corpus {tmp_path}/pretraining/chexpert "
                                        r"shares \d+ patient\(s\) with the training subset split, e.g. patient\d+"):
        get_task("chexpert_cls").pretraining_fingerprint(tmp_path, train_size=10)
