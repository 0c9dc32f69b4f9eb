"""Reading a dataset folder that may be crafted: no link is followed, no path leaves it, no read is unbounded.

A data root comes from the user, but its files may come from anywhere (a download, a colleague's copy).
A link or a `../` path in a metadata table would make a loader read a host file (and `verify` call the
result a known copy), a FIFO blocks a read forever and a device file never ends. The data root and each
dataset folder may themselves be links (the user chose where the data lives); nothing inside may be.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from cxrbench.errors import DataError

MAX_FILE_BYTES = 256 * 2**20
"""The largest file a loader reads: an uncompressed 16-bit 8000 x 8000 DICOM is half of it."""
MAX_PIXELS = 50_000_000
"""More than any chest X-ray detector gives (about 4,300 x 4,300 at most): a file claiming more is a
decompression bomb or not an X-ray."""
_BLOCK = 2**20
_LINK_RULE = "a dataset folder holds regular files and folders only; links are never followed"


def regular_files(folder: Path) -> list[Path]:
    """Every regular file under `folder`, sorted; a link or special file anywhere in it is refused.

    `os.scandir` tells links from files without a stat call per entry: CheXpert's 223k images take seconds."""
    files: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    path = Path(entry.path)
                    if entry.is_symlink():
                        raise DataError(f"{path}: is a symbolic link; {_LINK_RULE}")
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        files.append(path)
                    else:
                        raise DataError(f"{path}: is not a regular file or folder (a FIFO, socket or device); "
                                        f"{_LINK_RULE}")
        except OSError as error:
            raise DataError(f"{current}: cannot list the folder: {error.strerror}") from None
    return sorted(files)


def inside(folder: Path, relative: str, where: str, column: str) -> Path:
    """`folder / relative`, where `relative` comes from a metadata table and must not be absolute or use `..`.

    With no link inside the folder (`regular_files`), such a path cannot resolve outside it."""
    if relative.startswith("/") or ".." in relative.split("/"):  # strings, not PurePath: CheXpert has 223k rows
        raise DataError(f"{where}: column {column!r} gives the path {relative!r}, outside {folder}; "
                        "paths in a dataset's tables are relative to its folder and stay inside it")
    return folder / relative


def open_regular(path: Path, where: str, what: str = "file") -> BinaryIO:
    """`path` opened for reading, if it is a regular file (not a link) of at most `MAX_FILE_BYTES`."""
    try:  # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataError(f"{where}: {what} {path} does not exist") from None
    except ValueError as error:  # a NUL byte in the path
        raise DataError(f"{where}: {what} {str(path)!r} cannot be opened: {error}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DataError(f"{where}: {what} {path} is a symbolic link; {_LINK_RULE}") from None
        raise DataError(f"{where}: {what} {path} cannot be opened: {error.strerror}") from None
    info = os.fstat(descriptor)
    problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode)
               else f"is larger than {MAX_FILE_BYTES:,} bytes" if info.st_size > MAX_FILE_BYTES else None)
    if problem is not None:
        os.close(descriptor)
        raise DataError(f"{where}: {what} {path} {problem}")
    return os.fdopen(descriptor, "rb")


def read_bytes(path: Path, where: str, what: str = "file") -> bytes:
    """The whole of `path`, through `open_regular` (a file that grows past the limit while read is refused too)."""
    with open_regular(path, where, what) as handle:
        data = read_at_most(handle, MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"{where}: {what} {path} is larger than {MAX_FILE_BYTES:,} bytes")
    return data


def read_at_most(stream: BinaryIO, limit: int) -> bytes:
    """Up to `limit` bytes of `stream`, read in blocks: `read(limit)` would ask for a buffer of the limit's size (256
    MiB) for every file, which tracemalloc counts as allocated, however small the file."""
    blocks, total = [], 0
    while total < limit and (block := stream.read(min(_BLOCK, limit - total))):
        blocks.append(block)
        total += len(block)
    return b"".join(blocks)


def check_pixels(count: int, path: Path, where: str) -> None:
    """Refuse an image whose header claims more than `MAX_PIXELS`, before its pixels are decoded."""
    if count > MAX_PIXELS:
        raise DataError(f"{where}: image {path} has {count:,} pixels, more than {MAX_PIXELS:,} (no chest X-ray "
                        "is that large: a decompression bomb?)")
