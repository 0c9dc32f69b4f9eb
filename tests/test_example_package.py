"""The external example package (examples/cxrbench-mixup), installed for real and taken along the author's path.

It is installed with pip into a folder of its own (`--target`, no dependencies, no build isolation), which the
`cxrbench` subprocesses get on PYTHONPATH: the environment running the tests is left as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "cxrbench-mixup"
GOLDEN = PACKAGE / "cxrbench-golden.json"
"""The package's golden smoke result, made on the development machine: checked on whichever machine runs this."""
RUN = ["--profile", "smoke", "--generator", "mixup", "--workers", "2"]
"""Its CI's run: the smoke profile (phantom_cls's scarce regime, 4 seeds: 8 cells, ~2.5 min on 2 busy cores)."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment of a `cxrbench` with the example package installed: PYTHONPATH holds the pip --target."""
    root = tmp_path_factory.mktemp("mixup")
    source = shutil.copytree(PACKAGE, root / "source")  # pip's build folders land in the copy, not in the repo
    target = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}


def _cxrbench(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxrbench", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_its_own_tests_pass_on_the_installed_package(installed, tmp_path):
    shutil.copytree(PACKAGE / "tests", tmp_path / "tests")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          capture_output=True, text=True, env=installed, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_list_shows_it_as_an_unverified_generator(installed):
    done = _cxrbench(installed, "list", "generators")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("│ mixup "))
    assert [cell.strip() for cell in row.split("│")[2:6]] == ["generator", "label", "all", "no"]


@pytest.mark.slow
def test_check_generator_passes_it(installed, judge_cache):
    """The author's first command: every conformance check of the installed plugin passes on phantom_cls."""
    done = _cxrbench(installed, "check-generator", "mixup", "--task", "phantom_cls", "--cache-dir", str(judge_cache),
                     "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)["checks"]
    assert checks and [c["check"] for c in checks if c["status"] == "fail"] == [], checks


@pytest.fixture(scope="module")
def run_result(installed, tmp_path_factory) -> tuple[Path, Path]:
    """The smoke run its CI makes (the result file and its cache)."""
    root = tmp_path_factory.mktemp("run")
    out, cache = root / "result.json", root / "cache"
    done = _cxrbench(installed, "run", *RUN, "--cache-dir", str(cache), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out, cache


@pytest.mark.slow
def test_its_ci_check_passes_against_the_committed_golden(installed, run_result):
    """The package's regression check, as its CI runs it: a fresh smoke run against the golden file committed from
    another machine passes (exit 0); the table names the comparison."""
    done = _cxrbench(installed, "check", str(run_result[0]), str(GOLDEN), "--format", "markdown")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "phantom_cls" in done.stdout and "real_only" in done.stdout
    result = json.loads(run_result[0].read_text())
    assert {meta["name"]: meta["verified"] for meta in result["generators"]} == {"mixup": False}


@pytest.mark.slow
def test_card_init_then_submit_refuses_a_smoke_run(installed, run_result, tmp_path):
    """A submission needs the generator's whole family (both regimes, the task's 5 seeds, classic_aug in the run):
    about 10 minutes here, too long for the suite; so submit's refusal of the smoke run is what is checked."""
    done = _cxrbench(installed, "card", "init", "mixup", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    card = tmp_path / "submissions" / "mixup" / "generator.yaml"
    fields = yaml.safe_load(card.read_text())
    assert fields["revision"] == "cxrbench-mixup 0.1.0" and fields["code"] == "cxrbench_mixup.generator"
    assert fields["conditioning"] == ["label"] and fields["training_data"] == [{"dataset": "embedded",
                                                                                 "split": "train"}]
    card.write_text(card.read_text().replace("authors: []", "authors: [Ada]").replace("hardware: ''", "hardware: cpu"))
    result, cache = run_result
    done = _cxrbench(installed, "submit", str(result), "--generator-yaml", str(card), "--cache-dir", str(cache),
                     cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is a run of the smoke profile" in done.stderr
    assert not list((tmp_path / "submissions" / "mixup").glob("*.json"))  # nothing published


def test_the_guide_shows_the_example_as_it_is():
    """Every line of code the guide's walk-through shows is in the example package (the guide cannot drift)."""
    guide = (PACKAGE.parents[1] / "docs" / "adding-a-generator.md").read_text()
    walk_through = guide[guide.index("## The example package"):]
    source = "\n".join((PACKAGE / name).read_text() for name in ("pyproject.toml", "src/cxrbench_mixup/generator.py"))
    blocks = [block.split("\n", 1)[1] for block in walk_through.split("```")[1::2]
              if block.startswith(("python", "toml"))]
    shown = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert shown and [line for line in shown if line not in source] == []
