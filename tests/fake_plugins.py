"""Installed distributions made up for a test: a package and its `.dist-info` (METADATA, entry_points.txt,
top_level.txt) in a folder that goes on sys.path (in-process) or PYTHONPATH (a `cxrbench` subprocess)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WORKING = '''
import numpy as np

from cxrbench.generator import Generator
from cxrbench.schemas import GeneratorMeta


class Working(Generator):
    meta = GeneratorMeta(name="working", version="1", role="generator", conditioning=["label", "mask"],
                         description="A plugin that works: mid-grey images.")

    def generate(self, conditions, *, seed, batch_size=64):
        size = self.task.resolution
        return np.full((len(conditions), size, size), 0.5, dtype=np.float32)
'''


def install_distribution(site: Path, name: str, version: str, files: dict[str, str],
                         entry_points: dict[str, str]) -> None:
    """Write `files` (relative path: source) and a dist-info for distribution `name` into `site`."""
    for relative, source in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    points = "".join(f"{point} = {target}\n" for point, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[cxrbench.generators]\n{points}")
    tops = sorted({Path(relative).parts[0].removesuffix(".py") for relative in files})
    (info / "top_level.txt").write_text("".join(f"{top}\n" for top in tops))


def clear_registry() -> None:
    from cxrbench import code_identity, registry

    importlib.invalidate_caches()
    registry._plugins.cache_clear()
    code_identity.clear_caches()


@contextmanager
def on_path(site: Path) -> Iterator[None]:
    """`site`'s distributions visible to this process (and its plugins reloaded) until the block ends."""
    before = set(sys.modules)
    sys.path.insert(0, str(site))
    clear_registry()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        for module in set(sys.modules) - before:
            if getattr(sys.modules[module], "__file__", None) and sys.modules[module].__file__.startswith(str(site)):
                del sys.modules[module]
        clear_registry()


def environment(site: Path) -> dict[str, str]:
    """The environment of a `cxrbench` subprocess that sees `site`'s distributions."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}
