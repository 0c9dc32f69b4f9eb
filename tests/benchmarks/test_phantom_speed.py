"""Phantom rendering throughput: simulate_population at 64 and 128 pixels.

Run with `pytest tests/benchmarks/test_phantom_speed.py --benchmark-enable`; images/s lands in each
benchmark's extra_info. In the normal suite each body runs once as a smoke test; nothing is timed-asserted.
"""

import time

import numpy as np
import pytest

from cxrbench.tasks.embedded.phantom import FINDINGS, PhantomConfig, simulate_population

PREVALENCE = dict.fromkeys(FINDINGS, 0.3)


@pytest.mark.parametrize("size, n_patients", [(64, 150), (128, 40)])
def test_simulate_population_throughput(benchmark, size, n_patients):
    config = PhantomConfig(size=size)
    simulate_population(2, prevalence=PREVALENCE, studies_per_patient=(1, 3), config=config, seed=0)  # warm caches
    seconds: list[float] = []

    def simulate():
        start = time.perf_counter()
        population = simulate_population(n_patients, prevalence=PREVALENCE, studies_per_patient=(1, 3),
                                         config=config, seed=1)
        seconds.append(time.perf_counter() - start)
        return population

    benchmark.group = "phantom simulate_population"
    population = benchmark.pedantic(simulate, rounds=3, iterations=1)
    n_images = len(population.images)
    benchmark.extra_info["size"] = size
    benchmark.extra_info["images"] = n_images
    benchmark.extra_info["images_per_second"] = round(n_images / min(seconds), 1)
    assert population.images.shape == (n_images, size, size) and np.isfinite(population.images).all()
