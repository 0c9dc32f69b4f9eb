"""A wheel (not just the editable install) carries every subpackage under the one name `cxrbench`."""

import subprocess
import sys
import zipfile

SUBPACKAGES = ["cxrbench", "cxrbench.fidelity", "cxrbench.generators", "cxrbench.tasks", "cxrbench.tasks.embedded",
               "cxrbench.tasks.downstream", "cxrbench.tasks.real", "cxrbench.leaderboard",
               "cxrbench.leaderboard.views"]


def test_wheel_installs_and_imports_every_subpackage(tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(root)], check=True)
    wheel = next((tmp_path / "dist").glob("cxrbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(n.startswith(("benchmark/", "tasks/", "generators/")) for n in names), "bare top-level package"
    assert "cxrbench/costs.json" in names, "the measured cost table `cxrbench plan` reads"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
            f"mods = [importlib.import_module(m) for m in {SUBPACKAGES!r}]; "
            "assert all(m.__file__.startswith(sys.argv[1]) for m in mods), [m.__file__ for m in mods]; "
            "from cxrbench.registry import get_task, generator_class; "
            "get_task('phantom_cls'); get_task('siim_seg'); generator_class('oracle')")
    subprocess.run([sys.executable, "-c", code, str(target)], check=True, cwd=tmp_path)
