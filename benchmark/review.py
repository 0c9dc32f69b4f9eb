"""`cxrbench review`: find (or make) a generator's reviewed synthetic set and open the review page on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .cache import Cache
from .cell import synthetic_set
from .plan import first_ratio_cell, first_regime_plan
from .protocol import REVIEWED_SEED
from .schemas import RunConfig


def reviewed_set(task: str, generator: str, cache_root: Path, config: RunConfig) -> Path:
    """The folder of the synthetic set reviewers judge, made now if the cache lacks it."""
    plan = first_regime_plan(task, config, cache_root)
    _, cell = first_ratio_cell(plan, generator, REVIEWED_SEED)
    cache = Cache(cache_root)
    synthetic_set(cell, cache, plan.splits)
    return cache.path("synthetic", cell.synthetic_key)


def open_review_page(set_dir: Path, feedback: Path, reviewer: str, port: int, address: str = "127.0.0.1") -> int:
    """Serve the review page on `address` (this machine only, unless asked: anyone who reaches the page can add
    verdicts, which train ldm_mask_reviewed); blocks until Streamlit stops; returns Streamlit's exit code."""
    page = Path(__file__).with_name("review_page.py")
    env = {**os.environ, "CXRBENCH_REVIEW_SET": str(set_dir.resolve()),
           "CXRBENCH_REVIEW_FEEDBACK": str(feedback.resolve()),
           "CXRBENCH_REVIEWER": reviewer}
    command = [sys.executable, "-m", "streamlit", "run", str(page), "--server.headless", "true",
               "--server.port", str(port), "--server.address", address]
    return subprocess.call(command, env=env)
