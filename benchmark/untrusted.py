"""Reading files a submitter controls: regular files only, never through a link, never more than a limit.

A submission folder may be crafted. A symlink could make the validator read (and the leaderboard
show or serve) a host file, a device file like /dev/zero would be read until memory runs out, a YAML
alias bomb of a few hundred bytes expands to gigabytes, and deep JSON nesting overflows the parser's
stack. Every read of an entry goes through here and raises `ValueError` with what was expected.
"""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import yaml

MAX_CARD_BYTES = 64_000


def read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes, if it is a regular file (not a link) of at most `limit` bytes."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise ValueError("is a symbolic link; an entry holds regular files only")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("is not a regular file")
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"is larger than {limit:,} bytes")
    return data


def irregular_paths(folder: Path) -> list[tuple[Path, str]]:
    """Everything under `folder` that is not a plain file or folder (links are listed, never followed)."""
    found = []
    for directory, folders, files in os.walk(folder, followlinks=False):
        for name in [*folders, *files]:
            path = Path(directory) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                found.append((path, "is a symbolic link; an entry holds regular files only"))
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append((path, "is not a regular file"))
    return found


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a card needs none, and aliases are how a small file expands to gigabytes."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(data: bytes) -> Any:
    """Safe YAML without aliases (raises yaml.YAMLError)."""
    return yaml.load(data.decode("utf-8", errors="strict"), Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader


def load_json(data: bytes) -> Any:
    """JSON, with nesting too deep for the parser reported as bad input (raises ValueError)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("is nested too deeply to be a cxrbench file") from None


def load_npz(data: bytes, limit: int) -> dict[str, np.ndarray]:
    """The arrays of an npz archive's bytes, if it holds no pickles and unpacks to at most `limit` bytes (a few
    compressed bytes can declare gigabytes); raises ValueError("<failure type>: <what>") otherwise.

    The bytes are handed to zipfile, zlib and numpy's header parser, whose failures on crafted input come as many
    types (BadZipFile, zlib.error, SyntaxError, NotImplementedError, MemoryError, ...); each means the same here, so
    each is reported as one ValueError.
    """
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("holds a single array")
        with archive:
            declared = sum(info.file_size for info in archive.zip.infolist())
            if declared > limit:
                raise ValueError(f"unpacks to {declared:,} bytes, more than the {limit:,} allowed")
            return {name: archive[name] for name in archive.files}
    except Exception as error:  # any parser failure: see the docstring
        raise ValueError(f"{type(error).__name__}: {error}") from None
