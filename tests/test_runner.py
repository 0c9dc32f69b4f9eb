"""End to end on tiny settings: results, caching, resumption after kill -9, determinism across executors."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import cxrbench.executor
from cxrbench.cache import Cache
from cxrbench.runner import run

from .conftest import TINY


def _scores(result):
    return {(t.task.name, a.generator, a.ratio): [s.score for s in a.seeds]
            for t in result.tasks for a in [t.baseline, *t.arms]}


def test_result_has_every_arm_and_corrected_p_values(tiny_run):
    _, _, result = tiny_run
    assert [(t.task.name, t.regime) for t in result.tasks] == [("phantom_cls", "n24"), ("phantom_seg", "n24")]
    comparisons = [c for t in result.tasks for c in t.comparisons]
    assert {(c.generator, c.ratio) for c in comparisons} == {("oracle", 0.5), ("noise", 0.5)}
    # Off-protocol (a custom size and ratio): each generator's family is its 4 protocol comparisons, all
    # missing (p = 1), plus the 2 it ran; the run says so.
    assert {g: len(m) for g, m in result.incomplete.items()} == {"oracle": 4, "noise": 4}
    for c in comparisons:
        assert c.family_size == 6
        assert c.p <= c.p_holm <= c.p_bonferroni == pytest.approx(min(1.0, c.p * 6))
        assert c.ci[0] <= c.delta <= c.ci[1] and c.t_ci[0] <= c.delta <= c.t_ci[1]
        assert c.verdict == ("no detectable difference" if c.p_holm >= 0.05 else "helps" if c.delta > 0 else "hurts")
        assert c.mde > 0 and c.n_seeds == TINY["seeds"]
    for task in result.tasks:
        assert task.n_train_real == TINY["train_size"]
        for arm in task.arms:
            assert arm.n_synthetic == round(0.5 * TINY["train_size"])
        for arm in [task.baseline, *task.arms]:  # an arm's mean is its seeds' mean, each a score in [0, 1]
            scores = [s.score for s in arm.seeds]
            assert [s.seed for s in arm.seeds] == list(range(TINY["seeds"])) and all(0 <= x <= 1 for x in scores)
            assert arm.mean == pytest.approx(sum(scores) / len(scores), abs=1e-12)
        means = {arm.generator: arm.mean for arm in [task.baseline, *task.arms]}
        for c in task.comparisons:  # Δ is the arm's mean minus its reference's
            assert (c.arm_mean, c.reference_mean) == (means[c.generator], means[c.reference])
            assert c.delta == pytest.approx(c.arm_mean - c.reference_mean, abs=1e-12)


def test_second_run_recomputes_nothing_and_prints_the_same(tiny_run, monkeypatch):
    config, cache, first = tiny_run

    def refuse(*args, **kwargs):
        raise AssertionError("a cached cell was recomputed")

    monkeypatch.setattr(cxrbench.executor, "run_cell", refuse)
    second = run(config, cache, workers=1, show_progress=False)
    assert second.tasks == first.tasks


def test_a_second_generator_reuses_the_baseline(tiny_run, monkeypatch):
    config, cache, _ = tiny_run
    computed = []
    original = cxrbench.executor.run_cell
    monkeypatch.setattr(cxrbench.executor, "run_cell", lambda cell, root: computed.append(cell) or original(cell, root))
    run(config.model_copy(update={"tasks": ["phantom_cls"], "generators": ["classic_aug"]}), cache, workers=1,
        show_progress=False)
    assert computed and all(cell.generator == "classic_aug" for cell in computed)


def test_a_generator_is_also_compared_with_the_baselines_and_fitted_once(tiny_run, monkeypatch):
    config, cache, _ = tiny_run
    ldm = config.model_copy(update={"tasks": ["phantom_cls"], "generators": ["ldm_text", "classic_aug"],
                                    "generator_config": {"ldm_text": {"preset": "tiny"}}})
    result = run(ldm, cache, workers=1, show_progress=False)
    pairs = {(c.generator, c.reference) for c in result.tasks[0].comparisons}
    assert pairs == {("ldm_text", "real_only"), ("ldm_text", "classic_aug"), ("classic_aug", "real_only")}
    ldm_sets = [p.parent for p in Cache(cache).root.glob("synthetic/*/*/manifest.json")
                if json.loads(p.read_text())["generator"] == "ldm_text"]  # the cache also holds tiny_run's sets
    assert len(ldm_sets) == TINY["seeds"] and all((folder / "grid.png").is_file() for folder in ldm_sets)

    from cxrbench.generators.ldm.generator import LatentDiffusionGenerator

    monkeypatch.setattr(LatentDiffusionGenerator, "fit", lambda *a, **k: pytest.fail("the fitted LDM was refitted"))
    again = run(ldm.model_copy(update={"seeds": TINY["seeds"] + 1}), cache, workers=1, show_progress=False)
    assert len(again.tasks[0].arms[0].seeds) == TINY["seeds"] + 1


def test_corrupted_cell_is_recomputed_to_the_same_numbers(tiny_run):
    config, cache, first = tiny_run
    cell = first.tasks[1].arms[0].seeds[0].cell
    predictions = Cache(cache).path("downstream", cell) / "predictions.npz"
    predictions.write_bytes(predictions.read_bytes()[:-10] + b"0123456789")
    again = run(config, cache, workers=1, show_progress=False)
    assert _scores(again) == _scores(first)


def test_two_workers_give_the_numbers_of_one(tiny_run, tmp_path):
    config, _, first = tiny_run
    parallel = run(config.model_copy(update={"tasks": ["phantom_cls"], "generators": ["oracle"]}), tmp_path,
                   workers=2, show_progress=False)
    expected = {k: v for k, v in _scores(first).items() if k[0] == "phantom_cls" and k[1] != "noise"}
    assert _scores(parallel) == expected


@pytest.mark.slow
def test_kill_9_then_rerun_completes_with_the_uninterrupted_numbers(tiny_run, tmp_path):
    _, _, first = tiny_run
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "cxrbench", "run", "--generator", "oracle", "--task", "phantom_seg",
               "--train-size", str(TINY["train_size"]), "--seeds", str(TINY["seeds"]), "--ratios", "0.5",
               "--n-boot", str(TINY["n_boot"]), "--workers", "1", "--no-quality", "--cache-dir", str(cache),
               "--out", str(tmp_path / "result.json"), "--format", "json"]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(cache.glob("downstream/*/*/_COMPLETE.json")):
        assert victim.poll() is None and time.monotonic() < deadline, "run ended before a cell was stored"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "result.json").exists()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    from cxrbench.schemas import RunResult

    resumed = RunResult.model_validate_json(done.stdout)
    expected = {k: v for k, v in _scores(first).items() if k[0] == "phantom_seg" and k[1] != "noise"}
    assert _scores(resumed) == expected


def _children(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc (Linux)."""
    found, frontier = set(), {pid}
    while frontier:
        parent = frontier.pop()
        try:
            children = open(f"/proc/{parent}/task/{parent}/children").read().split()
        except OSError:
            continue
        for child in map(int, children):
            if child not in found:
                found.add(child)
                frontier.add(child)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killing_a_run_leaves_no_worker_behind(tmp_path, how):
    command = [sys.executable, "-m", "cxrbench", "run", "--generator", "oracle", "--task", "phantom_cls",
               "--train-size", "24", "--seeds", "4", "--ratios", "0.5", "--workers", "2",
               "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "result.json")]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "cache").glob("downstream/*/*/_COMPLETE.json")):  # the workers are at work
        assert victim.poll() is None and time.monotonic() < deadline, "the run ended before a cell was stored"
        time.sleep(0.2)
    workers = _children(victim.pid)
    assert len(workers) >= 3  # two workers and multiprocessing's resource tracker
    victim.send_signal(how)
    victim.wait()
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read().lower()
              for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}")
             and "zombie" not in open(f"/proc/{pid}/status").read().lower()]
    assert not alive, f"left behind: {alive}"
