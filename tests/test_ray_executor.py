"""The Ray executor (`--executor ray`): the local pool's numbers and predictions, fits before their cells, and a
killed driver that resumes from the cache without recomputing a finished cell.

One local Ray instance serves the module (its start-up takes seconds); the driver killed mid-run is a subprocess
with its own instance, whose processes must all be gone after it dies.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cxrbench.ray_executor import RayCluster, start_local_instance
from cxrbench.runner import run
from cxrbench.schemas import RunConfig

from .conftest import TINY
from .test_runner import _children, _scores

ray = pytest.importorskip("ray")

LDM_TINY = {"ldm_text": {"preset": "tiny"}}
CONFIG = RunConfig(tasks=["phantom_cls"], generators=["ldm_text", "oracle"], generator_config=LDM_TINY, **TINY)


@pytest.fixture(scope="module")
def local_ray():
    start_local_instance(2)
    yield
    ray.shutdown()


def _predictions(cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every cell's stored predictions, by cell key."""
    found = {}
    for path in cache.glob("downstream/*/*/predictions.npz"):
        with np.load(path) as arrays:
            found[path.parent.name] = {name: arrays[name] for name in arrays.files}
    return found


def _marker_times(cache: Path, stage: str) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in cache.glob(f"{stage}/*/*/_COMPLETE.json")}


@pytest.fixture(scope="module")
def ray_and_local(local_ray, tmp_path_factory):
    """The run through Ray (fitting the LDM there), then through the local pool of two workers on a cache that
    holds only Ray's fit: the sampling and every cell are recomputed locally, from the same fitted model (a fit is
    not pinned to one thread, so its last bits may depend on the thread count: docs/scaling.md). The pool's workers
    sample on one thread, as Ray's one-CPU tasks do (OMP_NUM_THREADS=1): LDM sampling, unlike a cell's training, runs
    on torch's default threads, and its bits depend on their number (CI, on two, gave other sets)."""
    on_ray, local = tmp_path_factory.mktemp("ray-cache"), tmp_path_factory.mktemp("local-cache")
    through_ray = run(CONFIG, on_ray, workers=2, show_progress=False, ray=RayCluster())
    shutil.copytree(on_ray / "fit", local / "fit")
    from cxrbench.generators.ldm.generator import LatentDiffusionGenerator

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LatentDiffusionGenerator, "fit", lambda *a, **k: pytest.fail("the local run refitted the LDM"))
        patch.setenv("OMP_NUM_THREADS", "1")  # read by torch in each spawned worker
        through_pool = run(CONFIG, local, workers=2, show_progress=False)
    return (through_ray, on_ray), (through_pool, local)


def test_ray_gives_the_local_pools_numbers_and_predictions(ray_and_local):
    (through_ray, on_ray), (through_pool, local) = ray_and_local
    assert through_ray.tasks == through_pool.tasks
    from_ray, from_pool = _predictions(on_ray), _predictions(local)
    assert len(from_ray) == 6 and from_ray.keys() == from_pool.keys()  # real_only, oracle, ldm_text: 2 seeds each
    for key, arrays in from_ray.items():
        assert arrays.keys() == from_pool[key].keys()
        for name, values in arrays.items():
            np.testing.assert_array_equal(values, from_pool[key][name], err_msg=f"cell {key}: {name}")


def test_the_fit_is_stored_once_before_the_synthetic_sets_that_need_it(ray_and_local):
    (_, on_ray), _ = ray_and_local
    fits, sets = _marker_times(on_ray, "fit"), _marker_times(on_ray, "synthetic")
    assert len(fits) == 1 and len(sets) == 2 * TINY["seeds"]  # the LDM's fit; the LDM's and the oracle's sets
    assert max(fits.values()) <= min(sets.values())


def test_a_relative_cache_on_a_cluster_is_refused(local_ray):
    from cxrbench.errors import ConfigError
    from cxrbench.ray_executor import shared_cache_root

    with pytest.raises(ConfigError, match="relative path: on a Ray cluster every node must see the cache"):
        shared_cache_root(Path("cache"), RayCluster("auto"))
    assert shared_cache_root(Path("cache"), RayCluster()) == str(Path("cache").resolve())


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's processes die with their driver on Linux")
def test_a_killed_ray_driver_resumes_from_the_cache(ray_and_local, tmp_path):
    (through_ray, _), _ = ray_and_local
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "cxrbench", "run", "--executor", "ray", "--workers", "2",
               "--generator", "oracle", "--task", "phantom_cls", "--train-size", str(TINY["train_size"]),
               "--seeds", str(TINY["seeds"]), "--ratios", "0.5", "--n-boot", str(TINY["n_boot"]), "--no-quality",
               "--cache-dir", str(cache), "--out", str(tmp_path / "result.json"), "--format", "json"]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600  # a shared 2-core machine: Ray's start-up alone can take a minute
    while not _marker_times(cache, "downstream"):
        assert victim.poll() is None, f"the run ended before a cell was stored: {victim.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no cell stored in 600 s"
        time.sleep(0.1)
    ray_processes = _children(victim.pid)  # Ray's GCS, raylet, workers
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    finished = _marker_times(cache, "downstream")
    try:
        deadline = time.monotonic() + 60
        while any(map(_alive, ray_processes)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in ray_processes if _alive(pid)], "the killed driver's Ray processes live on"
    finally:
        for pid in filter(_alive, ray_processes):
            os.kill(pid, signal.SIGKILL)
    assert ray_processes and not (tmp_path / "result.json").exists()
    assert 0 < len(finished) < 2 * 2 * TINY["seeds"], "the kill came after every cell: nothing to resume"

    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    from cxrbench.schemas import RunResult

    resumed = RunResult.model_validate_json(done.stdout)
    now = _marker_times(cache, "downstream")
    assert len(now) == 2 * TINY["seeds"] and {key: now[key] for key in finished} == finished  # none recomputed
    assert _scores(resumed) == {k: v for k, v in _scores(through_ray).items() if k[1] != "ldm_text"}
