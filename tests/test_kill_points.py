"""Kill a run at 20+ points across its stages: no process of it survives, no file is left half-written, and the
resumed run gives the uninterrupted run's numbers and predictions bit for bit.

One chain of kills: a `cxrbench run` with two workers is killed at the first point, the same command is started
again and killed at the second, and so on, each kill landing on a later stage of the same run: interpreter start,
imports, cache opened, planned, workers starting (on an empty cache); then, with the cache holding the
uninterrupted run's entries except one arm (phantom_cls oracle: two synthetic sets, two cells, so that the cell
stage costs seconds, not a whole run), imports, planning over the entries, workers starting, a staging folder,
each new synthetic set or cell, scoring, writing the result and exiting. The last command runs to completion and must
equal the session's uninterrupted tiny run (same settings, one process). Each point is one `reliability("fault")`
case; the tallies are published by tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from cxrbench.cache import MARKER, STALE_STAGING_SECONDS, Cache
from cxrbench.plan import checked_config, plan_tasks
from cxrbench.schemas import RunResult

from .conftest import TINY

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; workers die with "
                                                                             "their parent on Linux")]

POLL_SECONDS = 0.01
ORPHAN_GRACE_SECONDS = 10.0  # PR_SET_PDEATHSIG is delivered asynchronously
TRIGGER_TIMEOUT_SECONDS = 300.0
VOLATILE_FIELDS = ("created", "wall_seconds")
LEFT_TO_COMPUTE = ("phantom_cls", "oracle")
"""The (task, generator) arm whose synthetic sets and cells the chain computes under kills; the rest is seeded."""
WRITE_ATOMIC_TEMPORARY = re.compile(r"\.result\.json\.\d+-[0-9a-f]{32}\.tmp")
PLANNED = "cells to compute"  # runner's INFO line once planning is done, before the pool starts
SCORED = "incomplete:"  # runner's WARNING after scoring, before the result is written (the run is off-protocol)


@dataclass
class Watch:
    """What the test sees of one victim while it runs."""

    cache: Path
    out: Path
    total: int
    marker: bytes
    launched: float = field(default_factory=time.monotonic)
    entries_at_launch: int = 0
    lines: list[tuple[float, str]] = field(default_factory=list)
    complete_since: float | None = None

    def entries(self) -> int:
        return len(list(self.cache.glob(f"*/*/*/{MARKER}")))

    def logged(self, text: str) -> float | None:
        return next((at for at, line in list(self.lines) if text in line), None)

    def staging(self) -> list[str]:
        tmp = self.cache / "tmp"
        return [name for name in (os.listdir(tmp) if tmp.is_dir() else []) if name.startswith(("synthetic-",
                                                                                               "downstream-"))]


Trigger = Callable[[Watch], bool]


def after(seconds: float) -> Trigger:
    return lambda w: time.monotonic() - w.launched >= seconds


def cache_opened(w: Watch) -> bool:
    return (w.cache / "tmp").is_dir()


def logged(text: str) -> Trigger:
    return lambda w: w.logged(text) is not None


def workers_started(w: Watch) -> bool:
    """The parent, multiprocessing's resource tracker and two pool workers exist (the workers still importing)."""
    return len(marked_processes(w.marker)) >= 4


def scoring(delay: float) -> Trigger:
    """`delay` seconds after every entry exists and planning is done: the parent scores or writes the result."""
    def fired(w: Watch) -> bool:
        planned = w.logged(PLANNED)
        if w.complete_since is None and w.entries() >= w.total:
            w.complete_since = time.monotonic()
        if planned is None or w.complete_since is None:
            return False
        return time.monotonic() - max(planned, w.complete_since) >= delay
    return fired


def new_entries(count: int) -> Trigger:
    """`count` more complete cache entries than at launch (at most all of them); scoring if none are left."""
    def fired(w: Watch) -> bool:
        if w.entries_at_launch >= w.total:
            return scoring(0.3)(w)
        return w.entries() >= min(w.entries_at_launch + count, w.total)
    return fired


def staging(w: Watch) -> bool:
    """A worker is writing an entry (its staging folder exists), or, had the poll missed that, one more is done."""
    return bool(w.staging()) or new_entries(1)(w)


@dataclass(frozen=True)
class KillPoint:
    name: str
    stage: str
    how: signal.Signals
    when: Trigger


KILL, TERM = signal.SIGKILL, signal.SIGTERM
ON_EMPTY_CACHE = [
    KillPoint("interpreter starting", "startup", KILL, after(0.2)),
    KillPoint("importing", "startup", TERM, after(1.0)),
    KillPoint("cache opened", "startup", KILL, cache_opened),
    KillPoint("planned", "startup", KILL, logged(PLANNED)),
    KillPoint("workers starting", "startup", KILL, workers_started),
    KillPoint("workers starting, SIGTERM", "startup", TERM, workers_started),
]
ON_SEEDED_CACHE = [
    KillPoint("interpreter starting, entries present", "startup", TERM, after(0.5)),
    KillPoint("importing, entries present", "startup", KILL, after(1.5)),
    KillPoint("planned, entries verified", "startup", KILL, logged(PLANNED)),
    KillPoint("workers starting, entries present", "startup", KILL, workers_started),
    KillPoint("staging folder", "staging", KILL, staging),
    KillPoint("entry +1 (1)", "cells", KILL, new_entries(1)),
    KillPoint("entry +1 (2), SIGTERM", "cells", TERM, new_entries(1)),
    KillPoint("entries +2", "cells", KILL, new_entries(2)),
    KillPoint("scoring", "scoring", KILL, scoring(0.3)),
    KillPoint("scoring, later", "scoring", KILL, scoring(1.5)),
    KillPoint("scoring, SIGTERM", "scoring", TERM, scoring(3.0)),
    KillPoint("writing the result", "result", KILL, logged(SCORED)),
    KillPoint("writing the result, SIGTERM", "result", TERM, logged(SCORED)),
    KillPoint("result written, exiting", "result", KILL, lambda w: w.out.exists()),
]
KILL_POINTS = [*ON_EMPTY_CACHE, *ON_SEEDED_CACHE]
assert len(KILL_POINTS) >= 20 and len({p.name for p in KILL_POINTS}) == len(KILL_POINTS)


def marked_processes(marker: bytes) -> list[int]:
    """Live (not zombie) processes whose environment carries `marker`: the victim and everything it started."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes()
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class KillRecord:
    point: KillPoint
    fired: bool
    seconds: float
    entries: tuple[int, int]
    """Complete cache entries at launch and right after the kill."""
    staging: list[str]
    orphans: list[int]
    debris: list[str]
    """Files this kill left beside the result other than the finished result (a half-written result or a probe)."""
    written: str | None
    """The result file, had the kill come after it was renamed into place."""


@dataclass
class Chain:
    kills: dict[str, KillRecord]
    final: subprocess.CompletedProcess
    cache: Path
    out: Path
    identical: bool = False
    """The final run's result equals the uninterrupted one and its predictions are the same bits."""
    left_beside: list[str] = field(default_factory=list)
    """Files beside the result once the final run is done."""


def _command(cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "cxrbench", "--verbose", "run", "--task", "phantom_cls,phantom_seg",
            "--generator", "oracle,noise", "--train-size", str(TINY["train_size"]), "--seeds", str(TINY["seeds"]),
            "--ratios", ",".join(map(str, TINY["ratios"])), "--n-boot", str(TINY["n_boot"]), "--workers", "2",
            "--no-quality", "--cache-dir", str(cache), "--out", str(out), "--format", "json"]


def _beside(out: Path) -> set[str]:
    return {p.name for p in out.parent.iterdir() if p != out}


def _kill_at(point: KillPoint, command: list[str], env: dict[str, str], watch: Watch, out: Path) -> KillRecord:
    watch.entries_at_launch = at_launch = watch.entries()
    before = _beside(out)
    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    watch.launched = time.monotonic()
    reader = threading.Thread(target=lambda: watch.lines.extend((time.monotonic(), line) for line in victim.stderr),
                              daemon=True)
    reader.start()
    fired = False
    while victim.poll() is None and time.monotonic() - watch.launched < TRIGGER_TIMEOUT_SECONDS:
        if point.when(watch):
            fired = True
            break
        time.sleep(POLL_SECONDS)
    seconds, left_staging = time.monotonic() - watch.launched, watch.staging()
    if victim.poll() is None:
        victim.send_signal(point.how)  # the parent only: its workers must die with it
    victim.wait()
    reader.join(timeout=10)
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while (orphans := marked_processes(watch.marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in orphans:  # leave nothing running for the next point; the record fails the test
        os.kill(pid, signal.SIGKILL)
    return KillRecord(point, fired, seconds, (at_launch, watch.entries()), left_staging, orphans,
                      sorted(_beside(out) - before),
                      out.read_text() if out.exists() else None)


def _run_entries(config, reference_cache: Path) -> dict[tuple[str, str], bool]:
    """The run's cache entries (stage, key), each with whether the chain computes it (else it is seeded)."""
    entries = {}
    for cell in (c for plan in plan_tasks(checked_config(config), reference_cache) for c in plan.cells()):
        computed = (cell.task, cell.generator) == LEFT_TO_COMPUTE
        entries["downstream", cell.key] = computed
        if cell.has_synthetic:
            entries["synthetic", cell.synthetic_key] = computed
    return entries


def _seed(cache: Path, reference: Cache, entries: dict[tuple[str, str], bool]) -> None:
    for (stage, key), computed in entries.items():
        target = cache / stage / key[:2] / key
        if not computed and not target.exists():
            shutil.copytree(reference.path(stage, key), target)


@pytest.fixture(scope="module")
def reference(tiny_run):
    config, cache, result = tiny_run
    return config, Cache(cache), result


@pytest.fixture(scope="module")
def chain(reference, tmp_path_factory) -> Chain:
    config, reference_cache, _ = reference
    folder = tmp_path_factory.mktemp("kill-chain")
    cache, out = folder / "cache", folder / "results" / "result.json"
    out.parent.mkdir()
    marker = uuid.uuid4().hex
    env = {**os.environ, "CXRBENCH_KILL_TEST": marker}
    entries = _run_entries(config, reference_cache.root)
    command = _command(cache, out)
    kills = {}
    for point in KILL_POINTS:
        if point is ON_SEEDED_CACHE[0]:
            _seed(cache, reference_cache, entries)
        watch = Watch(cache, out, len(entries), f"CXRBENCH_KILL_TEST={marker}".encode())
        kills[point.name] = record = _kill_at(point, command, env, watch, out)
        print(f"{point.name}: fired {record.fired} at {record.seconds:.1f} s, entries {record.entries}, "
              f"staging {record.staging}, orphans {record.orphans}, debris {record.debris}")
        out.unlink(missing_ok=True)  # a result written just before the kill is checked, not reused
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    done = Chain(kills, final, cache, out, left_beside=sorted(_beside(out)))
    done.identical = _final_identical(done, reference)
    return done


def _comparable(result: RunResult) -> dict:
    data = result.model_dump(mode="json")
    for name in VOLATILE_FIELDS:
        data.pop(name)
    return data


def _final_identical(chain: Chain, reference) -> bool:
    _, reference_cache, expected = reference
    if chain.final.returncode != 0 or not chain.out.exists():
        return False
    resumed = RunResult.model_validate_json(chain.out.read_text())
    if _comparable(resumed) != _comparable(expected):
        return False
    cache = Cache(chain.cache)
    for cell in (s.cell for t in expected.tasks for a in [t.baseline, *t.arms] for s in a.seeds):
        with np.load(cache.path("downstream", cell) / "predictions.npz") as got, \
                np.load(reference_cache.path("downstream", cell) / "predictions.npz") as want:
            if sorted(got.files) != sorted(want.files) or any(
                    got[n].dtype != want[n].dtype or got[n].tobytes() != want[n].tobytes() for n in want.files):
                return False
    return True


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("name", [p.name for p in KILL_POINTS])
def test_a_killed_run_leaves_nothing_behind_and_resumes_to_the_same_result(chain, reference, name,
                                                                         reliability_tally):
    record, identical = chain.kills[name], chain.identical
    reliability_tally(faults_injected=1, orphan_processes=len(record.orphans), results_identical=int(identical),
                      lost_results=int(not identical))
    assert record.fired, f"the run ended before reaching {name!r}"
    assert not record.orphans, f"processes outlived the killed run: {record.orphans}"
    if record.written is not None:  # killed after the rename: the file is whole and right
        assert _comparable(RunResult.model_validate_json(record.written)) == _comparable(reference[2])
    assert identical, chain.final.stderr[-2000:]
    # a kill inside write_atomic may leave its temporary (never read as a result); the next write sweeps it
    assert all(WRITE_ATOMIC_TEMPORARY.fullmatch(name) for name in record.debris), record.debris
    assert not chain.left_beside, f"left beside the result after the final run: {chain.left_beside}"


def test_the_chain_killed_every_stage(chain):
    """The kills landed where they were aimed: the schedule still spans the run if the run's timing changes."""
    records = list(chain.kills.values())
    assert sum(r.entries[1] == 0 for r in records) == len(ON_EMPTY_CACHE)
    assert any(r.staging for r in records if r.point.stage == "staging"), "no kill caught a staging folder"
    total = max(r.entries[1] for r in records)
    cell_kills = [r.entries for r in records if r.point.stage in ("cells", "staging") and r.entries[0] < total]
    assert len(set(cell_kills)) >= 3, cell_kills
    assert all(r.entries[0] == total for r in records if r.point.stage in ("scoring", "result"))


def test_the_resumed_cache_holds_no_staging_or_broken_entry(chain):
    assert chain.final.returncode == 0, chain.final.stderr[-2000:]
    # a killed writer's staging folder is never an entry; it is swept once older than a live writer could be
    aged = time.time() - STALE_STAGING_SECONDS - 60
    for staging in (chain.cache / "tmp").iterdir():
        os.utime(staging, (aged, aged))
    cache = Cache(chain.cache)
    assert not [p for p in (chain.cache / "tmp").iterdir() if not p.name.startswith(".")], "staging not swept"
    entries = [p.parent for p in chain.cache.glob(f"*/*/*/{MARKER}")]
    assert entries and all(cache.is_complete(p.parts[-3], p.name) for p in entries)
    assert json.loads(chain.out.read_text())["schema_version"] == "2"
