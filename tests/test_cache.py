"""The stage cache: keys follow inputs, entries are atomic, corruption is detected."""

import hashlib
import json
import os

import numpy as np
import pytest

from cxrbench.cache import MARKER, Cache, content_key
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


def test_corrupted_entry_is_detected_and_removed(tmp_path, caplog):
    cache = Cache(tmp_path)
    with cache.writing("stage", "k2") as out:
        (out / "a.npy").write_bytes(b"12345")
    (cache.path("stage", "k2") / "a.npy").write_bytes(b"12346")
    assert not cache.is_complete("stage", "k2")
    assert "corrupted" in caplog.text
    assert not cache.path("stage", "k2").exists()


def test_entry_without_marker_is_not_trusted(tmp_path):
    cache = Cache(tmp_path)
    with cache.writing("stage", "k3") as out:
        (out / "a").write_text("x")
    (cache.path("stage", "k3") / MARKER).unlink()
    assert not cache.is_complete("stage", "k3")


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


def test_stale_staging_of_dead_process_is_removed(tmp_path):
    Cache(tmp_path)
    stale = tmp_path / "tmp" / "stage-key-999999999-abcd1234"
    stale.mkdir()
    live = tmp_path / "tmp" / f"stage-key-{os.getpid()}-abcd1234"  # this process's: still being written
    live.mkdir()
    Cache(tmp_path)
    assert not stale.exists() and live.exists()
