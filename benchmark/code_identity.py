"""A generator's code identity: what its fit key and revision hold so that editing its code invalidates its cache.

Without it, a `generate()` edited without bumping `meta.version` would be answered from the cache with the old
code's images and numbers. Which files count:

- An in-repo generator (a module of `cxrbench.generators`): the module that defines its class; when that module
  sits in a sub-package (`generators/ldm/`), every module of the sub-package, since its model, sampler and
  training pieces decide what it fits and makes as much as the class's own module does. The same holds for
  each in-repo generator class it derives from (a plugin may subclass `noise`).
- Any other generator (a plugin): every module of its top-level package (the first package of its module path
  that is not a namespace package; the module alone when it is a single-file module), and the name and version
  of the distribution(s) that installed that package (`importlib.metadata`), which stand for what no digest
  reads: compiled extensions, data files, the versions it pins.

Only `*.py` files count, by content (never by modification time), in the order of their relative paths, so one
code gives one digest on every machine and in every checkout. cxrbench's own core is not part of it: the stage
versions (`protocol.STAGE_VERSIONS`) cover that. A package of more than MAX_FILES modules or MAX_BYTES of source
is refused: digesting it would be slow, and it means the generator does not live in a package of its own.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

from .errors import GeneratorError

IN_REPO = "cxrbench.generators"
MAX_FILES = 2_000
MAX_BYTES = 32 * 2**20


def code_identity(cls: type) -> list[dict[str, Any]]:
    """The code identity of generator class `cls` (see the module's docstring): JSON values for a cache key."""
    try:
        identities = [_module_identity(module) for module in _generator_modules(cls)]
    except GeneratorError as error:
        raise GeneratorError(f"generator {cls.meta.name}: {error}") from None
    return [identity for number, identity in enumerate(identities) if identity not in identities[:number]]


def code_roots(cls: type) -> list[Path]:
    """The files and folders whose `*.py` files make up generator class `cls`'s code."""
    return list(dict.fromkeys(filter(None, map(code_root, _generator_modules(cls)))))


def _generator_modules(cls: type) -> list[str]:
    """The module of `cls` and those of its in-repo generator bases (a plugin may subclass `noise`)."""
    bases = [base.__module__ for base in cls.__mro__[1:] if base.__module__.startswith(IN_REPO + ".")]
    return list(dict.fromkeys([cls.__module__, *bases]))


def code_root(module: str) -> Path | None:
    """The file or folder whose `*.py` files are `module`'s code identity (None: the module has no source file)."""
    parts = module.split(".")
    if module.startswith(IN_REPO + ".") and len(parts) > 3:
        return _source(".".join(parts[:3]))  # the sub-package, e.g. cxrbench.generators.ldm
    if module.startswith(IN_REPO + "."):
        return _source(module)
    for depth in range(1, len(parts) + 1):  # a namespace package has no file: the first package below it that has
        root = _source(".".join(parts[:depth]))
        if root is not None:
            return root
    return None


def clear_caches() -> None:
    """Forget computed identities (for tests that edit a module or install a distribution)."""
    _module_identity.cache_clear()
    _installed_packages.cache_clear()


def _source(module: str) -> Path | None:
    """The package folder of `module` if it is a package, its file if a module, None if it has no file."""
    loaded = sys.modules.get(module)
    if loaded is None:
        try:
            loaded = importlib.import_module(module)
        except ImportError:  # a class made where no importable module is (`python -c`, exec)
            return None
    file = getattr(loaded, "__file__", None)
    if file is None:
        return None
    return Path(file).parent if hasattr(loaded, "__path__") else Path(file)


@cache
def _module_identity(module: str) -> dict[str, Any]:
    root = code_root(module)
    identity: dict[str, Any] = {"sources": None if root is None else root.name.removesuffix(".py"),
                                "sources_sha256": None if root is None else _digest(root)}
    if not module.startswith(IN_REPO + "."):
        identity["distributions"] = _distributions_of(module.partition(".")[0])
    return identity


def _python_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):  # symbolic links to folders are not followed
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        found += [Path(folder, name) for name in files if name.endswith(".py")]
        if len(found) > MAX_FILES:
            raise GeneratorError(f"its code, {root}, holds more than {MAX_FILES:,} .py files, too many to digest for "
                                 f"its cache key: put the generator in a package of its own")
    return found


def _digest(root: Path) -> str:
    """sha256 over (relative path, content) of every `*.py` file under `root`, in relative path order."""
    base = root.parent
    files = sorted(_python_files(root), key=lambda path: path.relative_to(base).as_posix())
    digest = hashlib.sha256()
    total = 0
    for path in files:
        content = path.read_bytes()
        total += len(content)
        if total > MAX_BYTES:
            raise GeneratorError(f"its code, {root}, holds more than {MAX_BYTES // 2**20} MiB of .py files, too "
                                 f"much to digest for its cache key: put the generator in a package of its own")
        relative = path.relative_to(base).as_posix().encode()
        digest.update(len(relative).to_bytes(8, "big") + relative + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _installed_packages() -> dict[str, list[str]]:
    """{top-level package: distributions}, read once (it scans every installed distribution, a fraction of a s)."""
    return dict(packages_distributions())


def _distributions_of(top_level: str) -> dict[str, str]:
    """{distribution name: version} of the installed distributions that provide package `top_level`."""
    found = {}
    for name in sorted(set(_installed_packages().get(top_level, []))):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
