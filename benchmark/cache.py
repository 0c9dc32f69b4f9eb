"""A content-addressed stage cache: a key is the hash of every input that matters plus the stage version.

An entry is a folder built under `tmp/` and renamed into place only after a marker listing the
sha256 of every file was written, so a killed run never leaves an entry a later run trusts; an
entry whose files no longer match their hashes is reported, removed and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CacheError

log = logging.getLogger(__name__)

MARKER = "_COMPLETE.json"


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
    """Write a file so that readers see either the old content or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (full disk, `path` a folder) leaves nothing behind
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        self._remove_stale_staging()

    def _remove_stale_staging(self) -> None:
        """Staging folders of killed processes are garbage; those of live ones are in use."""
        for staging in self._tmp.iterdir():
            try:
                pid = int(staging.name.split("-")[-2])
            except (ValueError, IndexError):
                continue
            if not _pid_alive(pid):
                shutil.rmtree(staging, ignore_errors=True)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key

    def is_complete(self, stage: str, key: str) -> bool:
        """True if the entry exists and every file matches its recorded hash; a corrupted entry is removed."""
        path = self.path(stage, key)
        marker = path / MARKER
        if not marker.exists():
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            return False
        problem = self._verify(path, marker)
        if problem is None:
            return True
        log.warning("cache entry %s/%s is corrupted (%s); recomputing it", stage, key, problem)
        shutil.rmtree(path, ignore_errors=True)
        return False

    @staticmethod
    def _verify(path: Path, marker: Path) -> str | None:
        try:
            recorded = json.loads(marker.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return "unreadable marker"
        for name, digest in recorded.items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            if file_sha256(file) != digest:
                return f"{name} does not match its hash"
        return None

    @contextmanager
    def writing(self, stage: str, key: str, inputs: Mapping[str, Any] | None = None) -> Iterator[Path]:
        """Yield an empty folder to fill; on success it becomes the entry, on error it is discarded."""
        staging = self._tmp / f"{stage}-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            yield staging
            files = {p.relative_to(staging).as_posix(): file_sha256(p)
                     for p in sorted(staging.rglob("*")) if p.is_file()}
            marker = {"stage": stage, "key": key, "files": files, "inputs": _canonical(inputs or {})}
            write_atomic(staging / MARKER, json.dumps(marker, indent=1).encode())
            final = self.path(stage, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                shutil.rmtree(final)
            try:
                os.replace(staging, final)
            except OSError:
                if not (final / MARKER).exists():  # only a concurrent writer of the same key is benign
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
