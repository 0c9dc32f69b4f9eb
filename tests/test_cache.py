"""The stage cache: keys follow inputs, entries are atomic, corruption is detected and recomputed."""

import errno
import fcntl
import hashlib
import json
import os
import time

import numpy as np
import pytest

from cxrbench.cache import MARKER, STAGING_LOCK, STALE_STAGING_SECONDS, Cache, content_key
from cxrbench.errors import CacheError


def test_key_changes_with_every_input():
    base = {"seed": 0, "ratio": 1.0, "array": np.zeros(3), "nested": {"a": [1, 2]}}
    key = content_key("downstream", "1", base)
    assert key == content_key("downstream", "1", dict(reversed(list(base.items()))))
    for changed in ({**base, "seed": 1}, {**base, "ratio": 2.0}, {**base, "array": np.ones(3)},
                    {**base, "nested": {"a": [1, 3]}}):
        assert content_key("downstream", "1", changed) != key
    assert content_key("downstream", "2", base) != key
    assert content_key("synthetic", "1", base) != key


def test_key_rejects_unhashable_inputs():
    with pytest.raises(TypeError, match="cannot use a object in a cache key"):
        content_key("x", "1", {"f": object()})


def test_entry_becomes_visible_only_when_complete(tmp_path):
    cache = Cache(tmp_path)
    assert not cache.is_complete("stage", "k1")
    with pytest.raises(RuntimeError, match="killed"):
        with cache.writing("stage", "k1") as out:
            (out / "a.txt").write_text("half")
            raise RuntimeError("killed")
    assert not cache.is_complete("stage", "k1")
    assert not cache.path("stage", "k1").exists()
    assert not out.exists()  # the half-written staging folder is discarded too
    with cache.writing("stage", "k1") as out:
        (out / "a.txt").write_text("whole")
    assert cache.is_complete("stage", "k1")
    assert (cache.path("stage", "k1") / "a.txt").read_text() == "whole"


def test_marker_records_file_hashes(tmp_path):
    cache = Cache(tmp_path)
    with cache.writing("stage", "k4", {"seed": 3}) as out:
        (out / "sub").mkdir()
        (out / "sub" / "b").write_text("y")
    marker = json.loads((cache.path("stage", "k4") / MARKER).read_text())
    assert marker["files"] == {"sub/b": hashlib.sha256(b"y").hexdigest()} and marker["inputs"] == {"seed": 3}


def test_unwritable_cache_directory_is_a_clear_error(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(CacheError, match="not writable"):
        Cache(blocked / "cache")


@pytest.mark.reliability("fault")
def test_a_cache_folder_without_file_locks_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.raises(CacheError, match=r"does not support file locks \(flock\), which the cache needs: No locks"):
        Cache(tmp_path)


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("age, removed", [(STALE_STAGING_SECONDS + 60, True), (STALE_STAGING_SECONDS - 60, False)])
def test_unlocked_staging_is_removed_by_age_not_by_pid(tmp_path, age, removed):
    """A staging folder nobody locks is garbage once old; a young one may be a writer still starting. Its
    name's process id (here this live process's) is not looked at."""
    Cache(tmp_path)
    staging = tmp_path / "tmp" / f"stage-key-{os.getpid()}-abcd1234"
    (staging / "entry").mkdir(parents=True)
    (staging / STAGING_LOCK).touch()
    past = time.time() - age
    os.utime(staging, (past, past))
    Cache(tmp_path)
    assert staging.exists() is not removed


CORRUPTIONS = {
    "changed byte": lambda entry: (entry / "a.npy").write_bytes(b"12346"),
    "missing file": lambda entry: (entry / "a.npy").unlink(),
    "file replaced by a folder": lambda entry: ((entry / "a.npy").unlink(), (entry / "a.npy").mkdir()),
    "missing marker": lambda entry: (entry / MARKER).unlink(),
    "marker not JSON": lambda entry: (entry / MARKER).write_text("{"),
    "marker's files not a mapping": lambda entry: (entry / MARKER).write_text('{"files": ["a.npy"]}'),
}


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupted_entry_is_recomputed(tmp_path, caplog, corrupt):
    cache = Cache(tmp_path)
    with cache.writing("stage", "k5") as out:
        (out / "a.npy").write_bytes(b"12345")
    corrupt(cache.path("stage", "k5"))
    assert not cache.is_complete("stage", "k5")
    assert "corrupted" in caplog.text and not cache.path("stage", "k5").exists()
    with cache.writing("stage", "k5") as out:
        (out / "a.npy").write_bytes(b"12345")
    assert cache.is_complete("stage", "k5") and (cache.path("stage", "k5") / "a.npy").read_bytes() == b"12345"
