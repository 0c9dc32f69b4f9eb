"""A content-addressed stage cache: a key is the hash of every input that matters plus the stage version.

An entry is a folder built in a staging folder under `tmp/` and renamed into place only after a marker
listing the sha256 of every file was written, so a killed run never leaves an entry a later run trusts;
an entry whose files no longer match their hashes is reported, removed and recomputed.

Several processes and machines may share one cache folder (a Ray cluster, jobs on a shared file system):
- Writers of one key race safely. Each builds its own staging folder without any lock; only the commit
  step takes the key's lock (`locks/<stage>-<key>.lock`): the first complete entry wins, a later
  writer of the same key discards its staging folder, and a valid entry is never replaced. Removing a
  corrupted entry takes the same lock, so it never removes an entry a writer is putting into place.
- A staging folder is in use while its writer holds the lock on its `.lock` file, for the writer's whole
  lifetime. Any Cache removes a staging folder only if that lock can be taken without blocking and the
  folder is older than STALE_STAGING_SECONDS; never by process id, which means nothing to a process in
  another PID namespace or on another machine.

What it relies on: `rename` within one file system that is atomic and fails onto a non-empty folder;
`fcntl.flock` locks (a cache folder that refuses them is a CacheError) that every sharing process sees:
true on one machine, whatever its PID namespaces, and on NFS v3 (with NLM) and v4, CephFS, and Lustre
mounted with `flock`. Where locks stay local to each machine (NFS with `local_lock=flock`, Lustre with
`localflock`), writers of one key on different machines still never fail (the losing rename is seen to
fail onto a complete entry), but the age limit is then the only guard of a running writer's staging
folder against another machine: keep STALE_STAGING_SECONDS above the longest stage. Ages come from the
file server's clock, compared with this machine's: clocks must agree within minutes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CacheError

log = logging.getLogger(__name__)

MARKER = "_COMPLETE.json"
STAGING_LOCK = ".lock"  # in a staging folder, held by its writer from creation to the end
STALE_STAGING_SECONDS = 3600  # an unlocked staging folder younger than this may belong to a writer still starting


def _canonical(value: Any) -> Any:
    """JSON-able form of a key input; arrays are replaced by their content hash."""
    if isinstance(value, np.ndarray):
        return {"ndarray_sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return _canonical(value.model_dump(mode="json"))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot use a {type(value).__name__} in a cache key")


def content_key(stage: str, stage_version: str, inputs: Mapping[str, Any]) -> str:
    payload = json.dumps({"stage": stage, "version": stage_version, "inputs": _canonical(inputs)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old content or the new, never half of it.

    The temporary beside it is named by the writing process; one left by a killed writer is removed by the next
    write of the same file on this machine (a result file has one writer at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (full disk, `path` a folder) leaves nothing behind
        raise


def _remove_dead_temporaries(path: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]{{32}}\.tmp")
    for sibling in path.parent.iterdir():
        found = pattern.fullmatch(sibling.name)
        if found and not _alive(int(found.group(1))):
            sibling.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# On NFS, Linux emulates flock with POSIX byte-range locks, whose owner may be the process rather than the
# open file: two threads of one process might then both get a key's lock, and a probe of a writer's lock by
# its own process might release it. So the threads of a process also take turns at the commit step, and a
# process never probes the locks of its own writers' staging folders.
_commit_guard = threading.Lock()
_own_staging: set[str] = set()


def _new_commit_guard() -> None:
    """A forked child needs its own guard: the parent's may be held by a thread the child does not have."""
    global _commit_guard
    _commit_guard = threading.Lock()


os.register_at_fork(after_in_child=_new_commit_guard)


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) until the block ends and the file is closed."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _is_abandoned(staging: Path, now: float) -> bool:
    """True if the staging folder is older than the age limit and no writer holds its lock."""
    try:
        if now - staging.lstat().st_mtime < STALE_STAGING_SECONDS:
            return False
        fd = os.open(staging / STAGING_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return True  # old and never locked: a writer killed while starting, a half-deleted entry
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by a live writer (or the file system refuses locks): in use
        return False
    finally:
        os.close(fd)
    return True


def entry_path(root: Path, stage: str, key: str) -> Path:
    return root / stage / key[:2] / key


def holds_complete(root: Path, stage: str, key: str) -> bool:
    """Read-only `Cache.is_complete`: the entry is there and every file matches its recorded hash. It takes no lock
    and removes nothing, and a cache folder that does not exist holds nothing: for `cxrbench plan`, which writes
    nothing."""
    path = entry_path(Path(root).expanduser(), stage, key)
    return os.path.lexists(path) and Cache._verify(path) is None


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise CacheError(f"cache directory {self.root} is not writable: {error.strerror or error}") from None
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(exist_ok=True)
        self._locks = self.root / "locks"  # one empty file per key ever committed; never deleted (that would race)
        self._locks.mkdir(exist_ok=True)
        try:
            with _flock(self._locks / "probe.lock"):
                pass
        except OSError as error:
            raise CacheError(f"cache directory {self.root} does not support file locks (flock), which the cache "
                             f"needs: {error.strerror or error}") from None
        self._remove_abandoned_staging()

    def _remove_abandoned_staging(self) -> None:
        """Staging folders of killed writers are garbage; one whose writer holds its lock, on any machine, is not."""
        now = time.time()
        for entry in os.scandir(self._tmp):
            staging = Path(entry.path)
            if entry.is_dir(follow_symlinks=False) and entry.path not in _own_staging and _is_abandoned(staging, now):
                shutil.rmtree(staging, ignore_errors=True)

    def path(self, stage: str, key: str) -> Path:
        return entry_path(self.root, stage, key)

    def is_complete(self, stage: str, key: str) -> bool:
        """True if the entry exists and every file matches its recorded hash; a corrupted entry is removed.

        A failed check is repeated under the key's lock before anything is removed, since a writer may
        just have put the entry into place; so this never raises nor removes a good entry, whatever
        other processes do meanwhile.
        """
        path = self.path(stage, key)
        if not os.path.lexists(path):
            return False
        if self._verify(path) is None:
            return True
        with self._key_lock(stage, key):
            return self._valid_or_removed(stage, key)

    @contextmanager
    def _key_lock(self, stage: str, key: str) -> Iterator[None]:
        """The commit step of one key, one thread, process or machine at a time."""
        with _commit_guard, _flock(self._locks / f"{stage}-{key}.lock"):
            yield

    def _valid_or_removed(self, stage: str, key: str) -> bool:
        """Under the key's lock: True if a valid entry is in place; a corrupted one is removed."""
        path = self.path(stage, key)
        if not os.path.lexists(path):
            return False
        problem = self._verify(path)
        if problem is None:
            return True
        log.warning("cache entry %s/%s is corrupted (%s); recomputing it", stage, key, problem)
        trash = self._tmp / f"discard-{uuid.uuid4().hex}"
        os.replace(path, trash)  # out of sight in one step; a kill during the deletion leaves garbage in tmp/ only
        if trash.is_dir() and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink()
        return False

    @staticmethod
    def _verify(path: Path) -> str | None:
        """What is wrong with the entry, or None; never raises (another process may be removing it)."""
        try:
            recorded = json.loads((path / MARKER).read_text())["files"]
        except FileNotFoundError:
            return "no marker"
        except (OSError, ValueError, KeyError, TypeError):
            return "unreadable marker"
        if not isinstance(recorded, dict):
            return "unreadable marker"
        for name, digest in recorded.items():
            try:
                if file_sha256(path / name) != digest:
                    return f"{name} does not match its hash"
            except OSError:
                return f"{name} is missing or unreadable"
        return None

    @contextmanager
    def writing(self, stage: str, key: str, inputs: Mapping[str, Any] | None = None) -> Iterator[Path]:
        """Yield an empty folder to fill; on success it becomes the entry, on error it is discarded.

        Writers of one key may run at once anywhere: the first complete entry wins and a later writer's
        folder is discarded as on error, so every writer whose own work succeeded returns normally.
        """
        with self._staging(f"{stage}-{key}") as out:
            yield out
            files = {p.relative_to(out).as_posix(): file_sha256(p) for p in sorted(out.rglob("*")) if p.is_file()}
            marker = {"stage": stage, "key": key, "files": files, "inputs": _canonical(inputs or {})}
            write_atomic(out / MARKER, json.dumps(marker, indent=1).encode())
            final = self.path(stage, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            with self._key_lock(stage, key):
                if self._valid_or_removed(stage, key):
                    return
                try:
                    os.replace(out, final)
                except OSError:
                    if self._verify(final) is not None:  # a rename onto a complete entry fails: then ours lost
                        raise

    @contextmanager
    def _staging(self, name: str) -> Iterator[Path]:
        """A fresh folder under tmp/, locked while in use and removed afterwards."""
        staging = self._tmp / f"{name}-{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        _own_staging.add(str(staging))
        try:
            with _flock(staging / STAGING_LOCK):
                out = staging / "entry"
                out.mkdir()
                yield out
        finally:  # unlocked first: deleting a file that is still open leaves an .nfs file behind on NFS
            _own_staging.discard(str(staging))
            shutil.rmtree(staging, ignore_errors=True)
