"""Loading real images: decode + resize (first load) against reading the pixel cache (every later load).

Run with `pytest tests/benchmarks/test_pixel_cache_speed.py --benchmark-enable`; images/s of each
lands in extra_info, side by side in the group. In the normal suite each body runs once as a smoke test. The cached
loader returns a memory map (`tasks.real.pixels`); it is copied into memory here, so that every pixel is read.
"""

import time

import numpy as np
import pytest

from cxrbench.registry import get_task
from cxrbench.tasks.real.pixels import load_pixels

from ..real_data import SHARED_DATA, shared_dataset

N_IMAGES = 400


@pytest.fixture(scope="module")
def studies():
    shared_dataset("pneumonia-kermany")
    return get_task("pneumonia_cls").all_studies(SHARED_DATA)[:: 5216 // N_IMAGES][:N_IMAGES]


@pytest.mark.parametrize("cached", [False, True], ids=["decode+resize", "cached"])
def test_pixel_loading_throughput(benchmark, studies, cached, tmp_path):
    cache_dir = tmp_path / "cache" if cached else None
    if cached:
        load_pixels(studies, 64, with_masks=False, cache_dir=cache_dir)  # fill the cache once
    seconds: list[float] = []

    def load():
        start = time.perf_counter()
        images = np.array(load_pixels(studies, 64, with_masks=False, cache_dir=cache_dir).images)
        seconds.append(time.perf_counter() - start)
        return images

    benchmark.group = "pneumonia_cls pixels at 64 px"
    images = benchmark.pedantic(load, rounds=3, iterations=1)
    benchmark.extra_info["images"] = len(images)
    benchmark.extra_info["images_per_second"] = round(len(images) / min(seconds), 1)
    assert images.shape == (len(studies), 64, 64) and np.isfinite(images).all()
