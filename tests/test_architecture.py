"""The layers hold: import-linter's contracts (pyproject.toml) pass, and listing stays light.

The package is assembled from four top-level folders by setuptools' package-dir mapping, which no
import scanner follows; the test lays the folders out as one `cxrbench` tree (as a wheel has them)
and runs `lint-imports` on that.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def _package_tree(target: Path) -> Path:
    """`target/cxrbench/...` laid out as pyproject's package list and package-dir mapping place the modules."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    for package in setuptools["packages"]:
        parent = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
        folder = REPO / mapping[parent] / Path(*package[len(parent):].split(".")[1:])
        destination = target.joinpath(*package.split("."))
        destination.mkdir(parents=True, exist_ok=True)
        for source in folder.glob("*.py"):
            shutil.copy2(source, destination / source.name)
    return target


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """import-linter (the test extra's) on the laid-out tree, which shadows the installed package."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, str(REPO / "pyproject.toml")], cwd=tree, capture_output=True,
                          text=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_import_contracts_hold(tmp_path):
    result = _lint_imports(_package_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The check can fail: a leaderboard module that imports a generator breaks its contract."""
    tree = _package_tree(tmp_path)
    (tree / "cxrbench" / "leaderboard" / "leak.py").write_text("import cxrbench.generators.oracle\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "cxrbench.leaderboard.leak -> cxrbench.generators.oracle" in result.stdout


@pytest.mark.parametrize("argv", [["list"], ["list", "generators"], ["--help"]])
def test_listing_imports_no_model_library(argv):
    """`cxrbench list` reads every generator's and task's metadata without importing torch and friends."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom cxrbench.cli import app\n"
            f"result = CliRunner().invoke(app, {argv!r})\nassert result.exit_code == 0, result.output\n"
            "heavy = sorted(m for m in ('torch', 'diffusers', 'monai', 'torchxrayvision', 'transformers') "
            "if m in sys.modules)\nprint('HEAVY', heavy)\nprint(result.output)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    if argv[0] == "list":
        assert "ldm_mask_proxy" in result.stdout and "pretrained_pipeline" in result.stdout


def test_registry_refuses_two_classes_with_one_name(monkeypatch):
    from cxrbench import registry

    monkeypatch.setattr(registry, "GENERATOR_CLASSES",
                        (*registry.GENERATOR_CLASSES, "cxrbench.generators.noise:Noise"))
    registry._in_repo_generators.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="two generator classes are registered as 'noise'"):
            registry.generator_names()
    finally:
        monkeypatch.undo()
        registry._in_repo_generators.cache_clear()


def test_third_party_generators_are_named_by_their_meta_and_cannot_shadow(monkeypatch):
    from cxrbench import registry
    from cxrbench.generators.noise import Noise

    class Mixup(Noise):
        meta = Noise.meta.model_copy(update={"name": "mixup"})

    class FakeOracle(Noise):
        meta = Noise.meta.model_copy(update={"name": "oracle"})

    class Point:
        def __init__(self, name, cls):
            self.name, self.cls, self.value = name, cls, f"tests:{cls.__name__}"

        def load(self):
            return self.cls

    monkeypatch.setattr(registry, "entry_points", lambda group: [Point("anything", Mixup), Point("o", FakeOracle)])
    registry._plugins.cache_clear()
    try:
        assert registry.generator_class("mixup") is Mixup and Mixup.meta.verified is False
        assert registry.generator_class("oracle").__name__ == "Oracle" and "anything" not in registry.generator_names()
    finally:
        monkeypatch.undo()
        registry._plugins.cache_clear()
