"""What pinning the CPU kernels (benchmark/kernels.py) buys and costs, measured side by side; a script, not a test.

    python tests/benchmarks/kernel_pins.py drift OUT_DIR   # one small run per kernel setting, cells compared bitwise
    python tests/benchmarks/kernel_pins.py speed           # one real_only cell per embedded task, native vs pinned

Each setting runs in its own process, since the variables must be set before torch loads. "native" sets the
machine's own kernels explicitly (cxrbench would otherwise pin them). docs/verification.md holds the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

NATIVE = {"ONEDNN_MAX_CPU_ISA": "ALL", "ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO"}
PINNED = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
AVX2_MACHINE = {**PINNED, "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OMP_NUM_THREADS": "4",
                "NPY_DISABLE_CPU_FEATURES": "AVX512F,AVX512CD,AVX512_SKX,AVX512_CLX,AVX512_CNL,AVX512_ICL,AVX512_SPR"}
SETTINGS = {"native": NATIVE, "native_onednn_avx2": {**NATIVE, "ONEDNN_MAX_CPU_ISA": "AVX2"},
            "pinned": PINNED, "pinned_on_an_avx2_machine": AVX2_MACHINE}
RUN = ["--task", "phantom_cls,phantom_seg", "--generator", "oracle,classic_aug", "--regimes", "scarce", "--seeds", "2",
       "--n-boot", "200", "--workers", "1", "--no-quality", "--format", "json"]
ONE_CELL = """
import json, time
from cxrbench.registry import get_task
times = {}
for name in ("phantom_cls", "phantom_seg"):
    task = get_task(name)
    splits = task.load(None, train_size=task.meta.regimes["scarce"])
    start = time.perf_counter()
    task.train_and_predict(splits.train, splits, seed=0, device="cpu")
    times[name] = time.perf_counter() - start
print(json.dumps(times))
"""


def _entries(cache: Path) -> dict[tuple[str, str], dict]:
    return {(m.parts[-4], m.parts[-2]): json.loads(m.read_text())["files"] for m in cache.glob("*/*/*/_COMPLETE.json")}


def _largest_difference(a: Path, b: Path) -> float:
    with np.load(a) as x, np.load(b) as y:
        return max(float(np.max(np.abs(x[n].astype(float) - y[n].astype(float)), initial=0)) for n in x.files)


def drift(out: Path) -> None:
    for name, env in SETTINGS.items():
        cache = out / name
        subprocess.run([sys.executable, "-m", "cxrbench", "run", *RUN, "--cache-dir", str(cache),
                        "--out", str(out / f"{name}.json")], env={**os.environ, **env}, check=True,
                       stdout=subprocess.DEVNULL)
    for reference, other in (("native", "native_onednn_avx2"), ("pinned", "pinned_on_an_avx2_machine")):
        a, b = _entries(out / reference), _entries(out / other)
        equal = sum(a[key] == b[key] for key in a)
        largest = max((_largest_difference(out / reference / s / k[:2] / k / "predictions.npz",
                                           out / other / s / k[:2] / k / "predictions.npz")
                       for (s, k) in a if s == "downstream" and a[(s, k)] != b[(s, k)]), default=0.0)
        print(f"{other} vs {reference}: {equal} of {len(a)} cache entries bit for bit equal; largest prediction "
              f"difference {largest:.3g}")


def speed(rounds: int = 3) -> None:
    totals = {name: {"phantom_cls": 0.0, "phantom_seg": 0.0} for name in ("native", "pinned")}
    for _ in range(rounds):  # interleaved, so that a busy spell hits both
        for name in totals:
            done = subprocess.run([sys.executable, "-c", ONE_CELL], env={**os.environ, **SETTINGS[name]},
                                  check=True, capture_output=True, text=True)
            for task, seconds in json.loads(done.stdout).items():
                totals[name][task] += seconds
    for task in totals["native"]:
        native, pinned = totals["native"][task], totals["pinned"][task]
        print(f"{task}: native {native:.1f} s, pinned {pinned:.1f} s over {rounds} rounds: {pinned / native:.2f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["drift"] and len(sys.argv) == 3:
        drift(Path(sys.argv[2]))
    elif sys.argv[1:] == ["speed"]:
        speed()
    else:
        sys.exit(__doc__)
