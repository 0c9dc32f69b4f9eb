"""The smoke check's power (issue 17's Done-when): does `cxrbench check` pass the unchanged oracle and fail a degraded
one, seed after seed? Not part of the test run (minutes per seed); run it on purpose:

    python tests/benchmarks/smoke_power.py --check-seeds 10 --out smoke-power.json

It makes a golden result of the oracle (smoke profile, seeds from 0), then for each check seed k = 1..N runs the
smoke profile from seed 100·k of the oracle and of the oracle with `noise_share` 0.5 (half its images replaced by
the noise control's), checks each against the golden (`cxrbench check`, direction worse) and counts how often the
oracle passes (exit 0) and the degraded oracle fails (exit 1). The issue asks for at least 9 of 10 each. Every run
is the CLI a generator author runs, in a subprocess; the runs share one cache (a check seed's real_only cells train
once for both generators), so the first run of each seed is the one that costs a cold check's cells. It prints a
table and writes a small JSON (counts, exit codes, times, each comparison's diff and Holm p).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED_STEP = 100
"""Check seed k starts at seed k·100: far apart, so that no two checks (nor the golden's seeds) share a cell."""


def cpu_seconds() -> float:
    """CPU time of the finished child processes so far (a run and its workers): on a machine shared with other
    jobs the wall time says little, the CPU time what the run itself needed."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cxrbench(*args: str) -> tuple[int, float, str]:
    """(exit code, wall seconds, output) of `python -m cxrbench ARGS`."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cxrbench", *args], capture_output=True, text=True)
    return done.returncode, time.perf_counter() - started, done.stdout + done.stderr


def smoke_run(out: Path, first_seed: int, cache: Path, workers: int, config: Path | None) -> dict:
    """The smoke run's wall and CPU seconds; a run that fails ends the script."""
    cpu = cpu_seconds()
    args = ["run", "--profile", "smoke", "--suite", "embedded", "--generator", "oracle", "--first-seed",
            str(first_seed), "--cache-dir", str(cache), "--workers", str(workers), "--out", str(out)]
    code, seconds, output = cxrbench(*args, *(["--generator-config", str(config)] if config else []))
    if code != 0:
        raise SystemExit(f"cxrbench {' '.join(args)} failed (exit {code}):\n{output[-2000:]}")
    return {"run_seconds": round(seconds, 1), "run_cpu_seconds": round(cpu_seconds() - cpu, 1)}


def checked(new: Path, golden: Path) -> dict:
    code, seconds, output = cxrbench("check", str(new), str(golden), "--format", "json")
    if code not in (0, 1):
        raise SystemExit(f"cxrbench check {new} {golden} failed (exit {code}): {output[-2000:]}")
    report = json.loads(output)
    return {"exit": code, "check_seconds": round(seconds, 1),
            "rows": [{k: row[k] for k in ("task", "diff", "p_holm", "verdict_baseline", "verdict_new", "status")}
                     for row in report["rows"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check-seeds", type=int, default=10, help="How many check seeds (10 for the issue).")
    parser.add_argument("--noise-share", type=float, default=0.5, help="The degraded oracle's noise share.")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the cache and results (default: temp).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("smoke-power.json"))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="smoke-power-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    degraded_config = work / "degraded.yaml"
    degraded_config.write_text(f"oracle: {{noise_share: {args.noise_share}}}\n")

    golden = work / "golden.json"
    golden_time = smoke_run(golden, 0, cache, args.workers, None)
    print(f"golden (oracle, seeds from 0; cold unless --work held a cache): {golden_time['run_seconds']:.0f} s "
          f"({golden_time['run_cpu_seconds']:.0f} CPU s)", flush=True)
    rows = []
    for k in range(1, args.check_seeds + 1):
        first = k * SEED_STEP
        row = {"first_seed": first}
        for label, config in (("oracle", None), ("degraded", degraded_config)):
            new = work / f"{label}_{first}.json"
            row[label] = {**smoke_run(new, first, cache, args.workers, config), **checked(new, golden)}
        rows.append(row)
        print(f"seed {first}: oracle exit {row['oracle']['exit']} ({row['oracle']['run_seconds']:.0f} s), degraded "
              f"exit {row['degraded']['exit']} ({row['degraded']['run_seconds']:.0f} s)", flush=True)

    summary = {
        "noise_share": args.noise_share, "check_seeds": len(rows),
        "oracle_passed": sum(r["oracle"]["exit"] == 0 for r in rows),
        "degraded_failed": sum(r["degraded"]["exit"] == 1 for r in rows),
        "golden": golden_time,
    }
    args.out.write_text(json.dumps({"summary": summary, "seeds": rows}, indent=1))
    print(f"\n| first seed | oracle: exit (s) | degraded ×{args.noise_share:g}: exit (s) | degraded: diff per task |")
    print("|---|---|---|---|")
    for r in rows:
        diffs = ", ".join(f"{x['task']} {x['diff']:+.3f} (Holm p {x['p_holm']:.2g})" for x in r["degraded"]["rows"]
                          if x["diff"] is not None)
        print(f"| {r['first_seed']} | {r['oracle']['exit']} ({r['oracle']['run_seconds']:.0f}) | "
              f"{r['degraded']['exit']} ({r['degraded']['run_seconds']:.0f}) | {diffs} |")
    print(f"\noracle passed {summary['oracle_passed']} of {len(rows)}; degraded failed {summary['degraded_failed']} "
          f"of {len(rows)}; golden {golden_time['run_seconds']:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
