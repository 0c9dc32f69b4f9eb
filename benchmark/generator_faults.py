"""A generator's own failures as one line: which generator, in which method, on which task, regime and seed.

A generator is code cxrbench does not control; an exception from it (a bug, a missing import inside `generate()`)
would otherwise end a run in a long traceback naming none of that. `blamed_on` turns an exception raised through
the generator's own code (the files of its code identity, `code_identity.code_roots`) into a GeneratorError:

    generator mixup failed in generate() on task phantom_cls (regime scarce, seed 3): ZeroDivisionError: division
    by zero (mixup/core.py:42)

The method is the first frame of the generator's code (what cxrbench called), the place in brackets its last.
cxrbench's own errors pass unchanged (they are one line already), and so does an exception that never went through
the generator's code (a bug of cxrbench's is not the generator's). The exception it replaces stays chained, for
`--verbose`; the GeneratorError holds one string, so it survives a worker process's pickling unchanged.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .code_identity import code_roots
from .errors import CxrbenchError, GeneratorError


def place(task: str, regime: str | None = None, seed: int | None = None) -> str:
    """Where a generator ran, for messages: "on task phantom_cls (regime scarce, seed 3)"."""
    details = [f"regime {regime}" if regime else "", "" if seed is None else f"seed {seed}"]
    shown = ", ".join(filter(None, details))
    return f"on task {task}" + (f" ({shown})" if shown else "")


@contextmanager
def blamed_on(cls: type, where: str) -> Iterator[None]:
    """Run the block; an exception raised through the code of generator class `cls` becomes a GeneratorError."""
    try:
        yield
    except CxrbenchError:
        raise
    except Exception as error:
        frames = _own_frames(cls, error)
        if not frames:
            raise
        (method, _, _), (_, file, line) = frames[0], frames[-1]
        what = " ".join(f"{type(error).__name__}: {error}".split())
        raise GeneratorError(f"generator {cls.meta.name} failed in {method}() {where}: {what} ({file}:{line})") \
            from error


def _own_frames(cls: type, error: BaseException) -> list[tuple[str, str, int | None]]:
    """(function, file, line) of the traceback's frames in the generator's code, outermost first; the file shown
    relative to the folder above its code root (`mixup/core.py`, `ldm/generator.py`)."""
    roots = code_roots(cls)
    found = []
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        root = next((r for r in roots if path == r or r in path.parents), None)
        if root is not None:
            found.append((frame.name, path.relative_to(root.parent).as_posix(), frame.lineno))
    return found
