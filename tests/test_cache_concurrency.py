"""The stage cache shared by many writers: one key's writers race safely, readers never break an entry,
and staging folders are cleaned up by age and lock, never by process id."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from cxrbench import cache as cache_module
from cxrbench.cache import Cache

STAGE, KEY = "fit", "0123456789abcdef0123456789abcdef"
PAYLOAD = bytes(range(256)) * 256  # 64 KiB, the same for every writer as content addressing implies
WRITERS, PROCESSES = 300, 8
SPAWN = multiprocessing.get_context("spawn")  # as the runner's workers


def _write(cache: Cache, errors: list[str]) -> None:
    try:
        with cache.writing(STAGE, KEY, {"writer": threading.get_ident()}) as out:
            (out / "weights.bin").write_bytes(PAYLOAD)
            (out / "sub").mkdir()
            (out / "sub" / "config.json").write_text('{"width": 8}')
    except Exception as error:  # noqa: BLE001 - every escaping exception is a failed writer
        errors.append(f"{type(error).__name__}: {error}")


def _writer_process(root: str, threads: int, ready, go, results) -> None:
    """`threads` writers of KEY in this process, started together once the parent says go."""
    cache, errors, start = Cache(root), [], threading.Event()
    workers = [threading.Thread(target=lambda: (start.wait(), _write(cache, errors))) for _ in range(threads)]
    for worker in workers:
        worker.start()
    ready.put(threads)
    go.wait()
    start.set()
    for worker in workers:
        worker.join()
    results.put(errors)


def _staging_folders(root) -> list:
    return sorted((root / "tmp").iterdir())


def _assert_one_verified_entry(root) -> None:
    cache = Cache(root)
    entry = cache.path(STAGE, KEY)
    assert cache.is_complete(STAGE, KEY)
    assert (entry / "weights.bin").read_bytes() == PAYLOAD
    assert (entry / "sub" / "config.json").read_text() == '{"width": 8}'
    assert [p.name for p in entry.parent.iterdir() if p.is_dir()] == [KEY]
    assert _staging_folders(root) == []  # every losing writer discarded its staging folder


@pytest.mark.reliability("fault")
def test_300_concurrent_writers_of_one_key_all_succeed(tmp_path, reliability_tally):
    ready, go, results = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue()
    shares = [WRITERS // PROCESSES + (i < WRITERS % PROCESSES) for i in range(PROCESSES)]
    processes = [SPAWN.Process(target=_writer_process, args=(str(tmp_path), n, ready, go, results)) for n in shares]
    for process in processes:
        process.start()
    assert sum(ready.get(timeout=120) for _ in processes) == WRITERS
    started = time.perf_counter()
    go.set()
    errors = [error for _ in processes for error in results.get(timeout=120)]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(timeout=60)
    print(f"{WRITERS} writers in {PROCESSES} processes: {elapsed:.2f} s, {len(errors)} failed")
    assert errors == []
    _assert_one_verified_entry(tmp_path)
    reliability_tally(concurrent_writers=WRITERS)


@pytest.mark.reliability("fault")
def test_readers_during_writes_never_raise_nor_lose_the_entry(tmp_path):
    """Once a reader saw the entry complete, it stays complete and is the same folder (never replaced)."""
    cache, errors, seen, writing_done = Cache(tmp_path), [], [], threading.Event()

    def read() -> None:
        complete_before = False
        while not writing_done.is_set():
            try:
                complete = cache.is_complete(STAGE, KEY)
                if complete:
                    seen.append(os.stat(cache.path(STAGE, KEY)).st_ino)
            except Exception as error:  # noqa: BLE001 - a reader must never raise
                errors.append(f"reader {type(error).__name__}: {error}")
                return
            if complete_before and not complete:
                errors.append("a complete entry disappeared")
                return
            complete_before = complete

    readers = [threading.Thread(target=read) for _ in range(4)]
    writers = [threading.Thread(target=_write, args=(cache, errors)) for _ in range(60)]
    for thread in readers + writers:
        thread.start()
    for writer in writers:
        writer.join()
    writing_done.set()
    for reader in readers:
        reader.join()
    assert errors == []
    assert len(set(seen)) <= 1
    _assert_one_verified_entry(tmp_path)


@pytest.mark.reliability("fault")
def test_a_later_writer_never_replaces_a_complete_entry(tmp_path):
    cache = Cache(tmp_path)
    with cache.writing(STAGE, KEY) as out:
        (out / "a.txt").write_text("first")
    with cache.writing(STAGE, KEY) as out:
        (out / "a.txt").write_text("second")
    assert (cache.path(STAGE, KEY) / "a.txt").read_text() == "first"
    assert cache.is_complete(STAGE, KEY) and _staging_folders(tmp_path) == []


def _age(path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _killed_writer(root: str, started) -> None:
    with Cache(root).writing(STAGE, KEY) as out:
        (out / "half.bin").write_bytes(PAYLOAD)
        started.set()
        time.sleep(600)


@pytest.mark.reliability("fault")
def test_killed_writer_staging_is_removed_only_once_old(tmp_path):
    started = SPAWN.Event()
    writer = SPAWN.Process(target=_killed_writer, args=(str(tmp_path), started))
    writer.start()
    assert started.wait(timeout=120)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    [staging] = _staging_folders(tmp_path)
    Cache(tmp_path)
    assert staging.exists()  # young: its writer may be on a machine whose processes this one cannot see
    _age(staging, cache_module.STALE_STAGING_SECONDS - 60)
    Cache(tmp_path)
    assert staging.exists()
    _age(staging, cache_module.STALE_STAGING_SECONDS + 60)
    cache = Cache(tmp_path)
    assert _staging_folders(tmp_path) == [] and not cache.is_complete(STAGE, KEY)


HOLD_LOCK = ("import fcntl, sys\n"
             "handle = open(sys.argv[1], 'a')\n"
             "fcntl.flock(handle, fcntl.LOCK_EX)\n"
             "print('locked', flush=True)\n"
             "sys.stdin.read()\n")


@pytest.mark.reliability("fault")
def test_live_writer_with_a_foreign_pid_keeps_its_staging(tmp_path):
    """A writer in another PID namespace: its folder names a process id that does not exist here, its lock is held."""
    Cache(tmp_path)
    staging = tmp_path / "tmp" / "fit-somekey-999999999-abcd1234"
    staging.mkdir()
    (staging / "entry").mkdir()
    lock = staging / cache_module.STAGING_LOCK
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        _age(staging, cache_module.STALE_STAGING_SECONDS + 60)  # a fit that has run for more than the age limit
        Cache(tmp_path)
        assert staging.exists() and lock.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    _age(staging, cache_module.STALE_STAGING_SECONDS + 60)
    Cache(tmp_path)
    assert not staging.exists()  # the writer is gone and the folder is old: now it is garbage


@pytest.mark.reliability("fault")
def test_a_writer_whose_lock_another_machine_does_not_see_still_loses_cleanly(tmp_path, monkeypatch):
    """With machine-local locks (NFS `local_lock=flock`), another machine's entry may appear after this writer
    found the key free: its rename then fails onto that complete entry, which stays."""
    cache = Cache(tmp_path)
    with cache.writing(STAGE, KEY) as out:
        (out / "a.txt").write_text("other machine")
    monkeypatch.setattr(Cache, "_valid_or_removed", lambda *args: False)  # its check ran before that rename
    with cache.writing(STAGE, KEY) as out:
        (out / "a.txt").write_text("this machine")
    monkeypatch.undo()
    assert cache.is_complete(STAGE, KEY) and (cache.path(STAGE, KEY) / "a.txt").read_text() == "other machine"
    assert _staging_folders(tmp_path) == []
