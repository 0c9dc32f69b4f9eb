"""The Done-when check of issue 19 at protocol scale: a memorising generator (its regime's training images, cycled to
the arm's size, plus Gaussian noise of sd 0.005) measured exactly as a run measures an arm, beside oracle's numbers.

    python tests/benchmarks/memorising_quality.py CACHE

CACHE: any stage cache (the task's encoder and verifier are trained there once if missing). docs/fidelity.md,
"Measured", holds its figures.
"""
import sys
from pathlib import Path

import numpy as np

from cxrbench.cache import Cache
from cxrbench.plan import plan_tasks
from cxrbench.quality import DEFAULT_SETTINGS, AssessedSet, assess, condition_groups, task_spaces
from cxrbench.schemas import RunConfig

cache = Cache(Path(sys.argv[1]))
config = RunConfig(suite="embedded", tasks=["phantom_cls", "phantom_seg"], generators=["oracle"])
for plan in plan_tasks(config, cache.root):
    spaces = task_spaces(plan.task, config, cache)
    cell = plan.arms[0].cells[0]
    train = plan.splits.train
    rows = np.arange(cell.n_synthetic) % len(train)
    noise = np.random.default_rng(0).normal(0, 0.005, size=train.images[rows].shape)
    images = np.clip(train.images[rows] + noise, 0, 1).astype(np.float32)
    copied = train.subset(rows)
    features = spaces.extractor.embed(images)
    assessed = AssessedSet(features, condition_groups(plan.task.meta, copied), images)
    q = assess(plan.task.meta, plan.splits, cell.data_key, assessed, spaces, cache, DEFAULT_SETTINGS,
               generator="memorising", ratio=cell.ratio, seed=0, synthetic_key="memorising")
    m = q.memorisation
    r = q.reidentification
    print(plan.task.meta.name, plan.regime, len(images), "FID", round(q.fidelity.fid.value, 3),
          "mem features", round(m["features"].share_below.value, 3), m["features"].p_value,
          "mem pixels", round(m["pixels"].share_below.value, 3), m["pixels"].p_value,
          "reid", None if r is None else (round(r.share_above.value, 3), r.p_value,
                                          round(r.verifier_quality.auc.value, 3)), flush=True)
