"""Peak memory of loading CheXpert manifests of growing size from the pixel map (issue 20: flat in images, small and
linear in metadata). Not part of the test run (the largest copy takes minutes to write and decode); run it on purpose:

    python tests/benchmarks/pixel_map_memory.py --rows 1000 10000 223414 --work /tmp/pixel-map-memory

For each size it writes a fabricated copy (tests/fake_chexpert.py: the first N rows of CheXpert's published
train.csv, all 223,414 of them holding 191,027 frontal images, each row with a 64x64 JPEG of its own), then measures
`chexpert_cls`'s `load` (every split of the whole training set) in fresh processes, one per measurement:

- `build`: a cold cache: every image decoded, the chunks and the map written;
- `load`: the map already written: the metadata read, the map's hash checked and opened;
- `traced`: `load` again under tracemalloc (numpy registers its arrays with it): the Python-side and numpy memory;
- `memory`: no cache: every image decoded into one array in memory (what a load held before the map).

Each reports its peak RSS above the process's RSS before the load (VmHWM, reset through /proc/self/clear_refs) and
the RSS it ends with, anonymous and file-backed apart. The task's resolution is lowered to --resolution (default 32)
so that the largest map fits this machine's disk; the images' share of memory scales with the pixels, the rest not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

MODES = ("build", "load", "traced", "memory")


def status() -> dict[str, int]:
    """This process's VmHWM, VmRSS, RssAnon and RssFile in bytes (/proc/self/status)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def child(mode: str, root: Path, cache: Path, resolution: int) -> dict:
    import tracemalloc

    from cxrbench.tasks.real.paper_suite import ChexpertClassification

    class Chexpert(ChexpertClassification):
        meta = ChexpertClassification.meta.model_copy(update={"resolution": resolution})

    task = Chexpert()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so the peak below is the load's
    before = status()
    if mode == "traced":
        tracemalloc.start()
    start = time.perf_counter()
    splits = task.load(root, cache_dir=None if mode == "memory" else cache)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] if mode == "traced" else None
    after = status()
    parts = (splits.train, splits.val, splits.test)
    return {"mode": mode, "images": sum(len(p) for p in parts), "seconds": round(seconds, 1),
            "image_bytes": sum(p.images.nbytes for p in parts), "peak_rss_growth": after["VmHWM"] - before["VmRSS"],
            "rss_anon_growth": after["RssAnon"] - before["RssAnon"],
            "rss_file_growth": after["RssFile"] - before["RssFile"], "tracemalloc_peak": traced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000, 223414])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root, args.root / "cache", args.resolution)))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.fake_chexpert import fake_chexpert

    mib = 2**20
    print(f"{'rows':>7} {'mode':>6} {'images':>7} {'s':>6} {'image MiB':>9} {'peak RSS +MiB':>13} "
          f"{'anon +MiB':>9} {'file +MiB':>9} {'traced MiB':>10}")
    for rows in args.rows:
        root = args.work / f"rows-{rows}"
        if not (root / "written").exists():
            start = time.perf_counter()
            fake_chexpert(root, rows)
            (root / "written").write_text(f"{time.perf_counter() - start:.0f} s\n")
        for mode in MODES:
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--root", str(root), "--work",
                                  str(args.work), "--resolution", str(args.resolution)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.splitlines()[-1])
            traced = "" if r["tracemalloc_peak"] is None else f"{r['tracemalloc_peak'] / mib:10.1f}"
            print(f"{rows:>7} {mode:>6} {r['images']:>7} {r['seconds']:>6} {r['image_bytes'] / mib:>9.1f} "
                  f"{r['peak_rss_growth'] / mib:>13.1f} {r['rss_anon_growth'] / mib:>9.1f} "
                  f"{r['rss_file_growth'] / mib:>9.1f} {traced:>10}", flush=True)


if __name__ == "__main__":
    main()
