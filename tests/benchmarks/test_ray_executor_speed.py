"""The Ray executor with two workers against the local pool of two workers on the same cells, and Ray's start-up.

Run with `python -m pytest tests/benchmarks/test_ray_executor_speed.py --benchmark-enable -p no:cacheprovider`; it
is a timing, not a check (tests/test_ray_executor.py checks the executor), so without --benchmark-enable it is
skipped. Each round computes the same cells into an empty cache: the oracle and its real_only baseline on phantom_cls,
4 seeds each (8 cells, no fit). "ray, cold" starts a local Ray instance for the round and stops it after, as
`cxrbench run --executor ray` does; "ray, warm" runs on one instance started before its rounds (after one warm-up
round), as runs on a standing cluster do; "ray start-up" is an instance's start, one empty task and its stop alone.
Results: docs/scaling.md.
"""

import pytest

from cxrbench.ray_executor import RayCluster, start_local_instance
from cxrbench.runner import run
from cxrbench.schemas import RunConfig

ray = pytest.importorskip("ray")

WORKERS = 2
ROUNDS = 3
CONFIG = RunConfig(tasks=["phantom_cls"], generators=["oracle"], train_size=24, seeds=4, ratios=[0.5], n_boot=200,
                   quality=False)


@pytest.fixture
def timed(benchmark):
    if benchmark.disabled:
        pytest.skip("a timing: run with --benchmark-enable")
    benchmark.group = f"8 cells, {WORKERS} workers"
    return benchmark


def _one_run(tmp_path_factory, ray_cluster):
    def fresh():
        return (tmp_path_factory.mktemp("cache"),), {}

    def compute(cache):
        result = run(CONFIG, cache, workers=WORKERS, show_progress=False, ray=ray_cluster)
        assert len(result.tasks[0].baseline.seeds) == CONFIG.seeds
    return fresh, compute


def test_local_pool(timed, tmp_path_factory):
    fresh, compute = _one_run(tmp_path_factory, None)
    timed.pedantic(compute, setup=fresh, rounds=ROUNDS, iterations=1)


def test_ray_cold(timed, tmp_path_factory):
    fresh, compute = _one_run(tmp_path_factory, RayCluster())
    timed.pedantic(compute, setup=fresh, rounds=ROUNDS, iterations=1)


def test_ray_warm(timed, tmp_path_factory):
    fresh, compute = _one_run(tmp_path_factory, RayCluster())
    start_local_instance(WORKERS)  # the run keeps a connection it finds
    try:
        timed.pedantic(compute, setup=fresh, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    finally:
        ray.shutdown()


def test_ray_start_up(timed):
    def start_and_stop():
        start_local_instance(WORKERS)
        try:
            assert ray.get(ray.remote(lambda: 1).options(num_cpus=1).remote()) == 1
        finally:
            ray.shutdown()

    timed.pedantic(start_and_stop, rounds=ROUNDS, iterations=1)
