"""The cost of the quality step's parts: the fidelity metrics (1,000 synthetic against 1,000 real feature vectors of
512 dimensions), the memorisation search (1,000 synthetic plus 1,000 test images against 4,000 training images, in
features and in 64 x 64 pixels), feature extraction (the in-domain encoders, torchxrayvision's DenseNet) and the
re-identification verifier's scoring.

Run with `python -m pytest tests/benchmarks/test_fidelity_cost.py --benchmark-enable`; seconds per 1,000 synthetic
images land in each benchmark's extra_info. FID costs O(n d² + d³) per evaluation, KID and PRDC O(n² d) to set up
and O(n²) per bootstrap replicate, so the figures hold at these sizes only. In the normal suite each body runs once
on small arrays as a smoke test; nothing is timed-asserted.
"""

import time

import numpy as np
import pytest

from cxrbench.fidelity import metrics
from cxrbench.fidelity.memorisation import nearest_training

REPLICATES = 5


def _size(benchmark, full: int, smoke: int) -> int:
    return smoke if benchmark.disabled else full


def _features(n: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)) + shift


def _timed(benchmark, function, n_synthetic: int, per: int = 1):
    """Run `function` through the benchmark, recording the fastest round as seconds per 1,000 synthetic images (and
    per `per` evaluations, e.g. bootstrap replicates): wall seconds, and CPU seconds of this process (all its
    threads), which other jobs on a shared machine disturb less."""
    wall: list[float] = []
    cpu: list[float] = []

    def timed():
        start, start_cpu = time.perf_counter(), time.process_time()
        out = function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        return out

    out = benchmark.pedantic(timed, rounds=3, iterations=1)
    scale = 1000 / n_synthetic / per
    benchmark.extra_info["seconds_per_1000_images"] = round(min(wall) * scale, 3)
    benchmark.extra_info["cpu_seconds_per_1000_images"] = round(min(cpu) * scale, 3)
    return out


@pytest.mark.parametrize("metric", ["fid", "kid", "prdc"])
def test_point_estimate(benchmark, metric):
    n, dim = _size(benchmark, 1000, 60), _size(benchmark, 512, 16)
    real, synthetic = _features(n, dim, 0), _features(n, dim, 1, shift=0.1)
    benchmark.group = f"fidelity point estimate, {n} vs {n}, dim {dim}"
    value = _timed(benchmark, lambda: getattr(metrics, metric)(real, synthetic), n)
    assert np.isfinite(list(value.values()) if isinstance(value, dict) else value).all()


@pytest.mark.parametrize("metric", ["fid", "kid", "prdc"])
def test_bootstrap_replicate(benchmark, metric):
    """One replicate's cost, after the pair's set-up (kernels, distances, neighbour lists) is done once."""
    n, dim = _size(benchmark, 1000, 60), _size(benchmark, 512, 16)
    pair = metrics._Pair(_features(n, dim, 0), _features(n, dim, 1, shift=0.1), k=5)
    rng = np.random.default_rng(2)
    counts = [rng.multinomial(n, np.full(n, 1 / n), size=REPLICATES).astype(np.float64) for _ in range(2)]
    _ = pair.kernels, pair.distances, pair.balls  # set up once, outside the timing
    evaluate = {"fid": lambda: [pair.fid(r, s) for r, s in zip(*counts)],
                "kid": lambda: pair.kid(*counts),
                "prdc": lambda: [pair.prdc(r, s) for r, s in zip(*counts)]}[metric]
    benchmark.group = f"fidelity bootstrap, {REPLICATES} replicates, {n} vs {n}, dim {dim}"
    _timed(benchmark, evaluate, n, per=REPLICATES)
    benchmark.extra_info["note"] = "seconds per replicate per 1,000 synthetic images"


def test_fidelity_with_intervals(benchmark):
    """Everything `fidelity` does (set-up, point estimates, KID subsets) with a few replicates."""
    n, dim = _size(benchmark, 1000, 60), _size(benchmark, 512, 16)
    real, synthetic = _features(n, dim, 0), _features(n, dim, 1, shift=0.1)
    settings = metrics.FidelitySettings(n_boot=REPLICATES)
    benchmark.group = f"fidelity with {REPLICATES} replicates, {n} vs {n}, dim {dim}"
    result = _timed(benchmark, lambda: metrics.fidelity(real, synthetic, settings), n)
    assert result.fid.ci_low <= result.fid.ci_high


@pytest.mark.parametrize("space, dim", [("features", 512), ("pixels 64x64", 4096)])
def test_nearest_training_search(benchmark, space, dim):
    n_training, n_queries = _size(benchmark, 4000, 200), _size(benchmark, 2000, 40)
    dim = _size(benchmark, dim, 16)
    training = _features(n_training, dim, 3).astype(np.float32)
    queries = _features(n_queries, dim, 4).astype(np.float32)
    benchmark.group = f"nearest training image, {n_queries} queries vs {n_training} training, {space}"
    nearest = _timed(benchmark, lambda: nearest_training(queries, training), n_queries)
    assert nearest.index.shape == (n_queries,)


def _images(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(5).random((n, size, size), dtype=np.float32)


@pytest.mark.parametrize("task_name", ["phantom_cls", "phantom_seg"])
def test_in_domain_features(benchmark, task_name):
    """The in-domain encoder's cost is its network's forward pass (trained or not: the same arithmetic)."""
    from cxrbench.registry import get_task

    task = get_task(task_name)
    model, n = task.untrained_model(), _size(benchmark, 1000, 8)
    images = _images(n, task.meta.resolution)
    benchmark.group = f"features, {n} images of {task.meta.resolution} px"
    features = _timed(benchmark, lambda: task.embed(model, images, device="cpu"), n)
    assert features.shape[0] == n


def test_xrv_densenet_features(benchmark, tmp_path):
    """torchxrayvision's DenseNet-121 at 224 px (random weights saved to a local file, as a user's would be)."""
    import torch
    import torchxrayvision as xrv

    from cxrbench.fidelity.xrv_densenet import XrvDenseNetExtractor

    torch.save(xrv.models.DenseNet(weights=None).state_dict(), tmp_path / "densenet.pt")
    extractor, n = XrvDenseNetExtractor(tmp_path / "densenet.pt", device="cpu"), _size(benchmark, 200, 4)
    images = _images(n, 64)
    benchmark.group = f"features, {n} images of 64 px resized to 224"
    features = _timed(benchmark, lambda: extractor.embed(images), n)
    assert features.shape == (n, 1024)


def test_reidentification_scoring(benchmark):
    """The verifier's same-patient logits of (synthetic image, nearest training image) pairs."""
    from cxrbench.fidelity.patient_pairs import VerifierSettings
    from cxrbench.reidentification_verifier import Verifier, build_network

    settings = VerifierSettings()
    verifier, n = Verifier(build_network(settings.embedding).eval(), settings, 0, 0), _size(benchmark, 1000, 8)
    first, second = _images(n, 64), _images(n, 64)[::-1]
    benchmark.group = f"re-identification logits, {n} pairs of 64 px images"
    logits = _timed(benchmark, lambda: verifier.logits(first, second), n)
    assert logits.shape == (n,)
