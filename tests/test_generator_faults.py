"""A generator's own failure ends in one line naming the generator, its method, the task, the regime and the seed
(exit 2), through a worker pool too, and leaves nothing in the cache that a later run would trust."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cxrbench.cache import Cache
from cxrbench.cli import app
from cxrbench.errors import DataError, GeneratorError
from cxrbench.executor import execute
from cxrbench.generator_faults import blamed_on
from cxrbench.plan import plan_tasks
from cxrbench.schemas import RunConfig

from .fake_plugins import environment, install_distribution, on_path

CORE = "def share(total, parts):\n    return total / parts\n"
FAULTY = '''
import numpy as np

from cxrbench.generator import Generator
from cxrbench.schemas import GeneratorMeta

from .core import share


def _meta(name):
    return GeneratorMeta(name=name, version="1", role="generator", conditioning=["label", "mask"], description="x")


class Divides(Generator):
    meta = _meta("divides")

    def generate(self, conditions, *, seed, batch_size=64):
        return share(1.0, 0)


class ImportsInside(Generator):
    meta = _meta("imports_inside")

    def generate(self, conditions, *, seed, batch_size=64):
        import missing_inside_generate
        return missing_inside_generate


class Nan(Generator):
    meta = _meta("nan")

    def generate(self, conditions, *, seed, batch_size=64):
        size = self.task.resolution
        images = np.full((len(conditions), size, size), 0.5, dtype=np.float32)
        images.flat[:3] = np.nan
        images.flat[3:5] = 1.5
        return images


class FitFails(Nan):
    meta = _meta("fit_fails")
    trainable = True

    def fit(self, train, *, seed, workdir):
        raise RuntimeError("out of patience")
'''
CLASSES = {"divides": "Divides", "imports_inside": "ImportsInside", "nan": "Nan", "fit_fails": "FitFails"}


def _line(source: str, text: str) -> int:
    return next(number for number, line in enumerate(source.splitlines(), 1) if text in line)


AGREEMENT = ["agreement", "--task", "phantom_cls", "--seed", "1"]
CASES = {  # command, the one line it must end in
    "divides": (AGREEMENT, "generator divides failed in generate() on task phantom_cls (regime scarce, seed 1): "
                           f"ZeroDivisionError: float division by zero (faultypkg/core.py:{_line(CORE, '/ parts')})"),
    "imports_inside": (AGREEMENT, "generator imports_inside failed in generate() on task phantom_cls (regime scarce, "
                                  "seed 1): ModuleNotFoundError: No module named 'missing_inside_generate' "
                                  f"(faultypkg/gen.py:{_line(FAULTY, 'import missing_inside_generate')})"),
    "nan": (AGREEMENT, r"generator nan returned 3 non-finite value\(s\) \(NaN or infinity\) and 2 outside \[0, 1\], "
                       r"of [\d,]+, on task phantom_cls \(regime scarce, seed 1\)"),
    "fit_fails": (["run", "--task", "phantom_cls", "--train-size", "24", "--seeds", "2", "--workers", "1"],
                  "generator fit_fails failed in fit() on task phantom_cls (regime n24, seed 0): RuntimeError: out of "
                  f"patience (faultypkg/gen.py:{_line(FAULTY, 'out of patience')})"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_distribution(site, "cxrbench-faulty", "0.1", {"faultypkg/__init__.py": "", "faultypkg/core.py": CORE,
                                                          "faultypkg/gen.py": FAULTY},
                         {"broken": "faultypkg.missing:Broken",  # warned about once, by the parent process only
                          **{name: f"faultypkg.gen:{cls}" for name, cls in CLASSES.items()}})
    return site


def _places(tmp_path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out.json")]


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_failing_generator_ends_in_one_line_naming_it_the_task_the_regime_and_the_seed(site, tmp_path, name):
    command, expected = CASES[name]
    with on_path(site):
        result = CliRunner().invoke(app, [command[0], "--generator", name, *command[1:], *_places(tmp_path)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    pattern = expected if name == "nan" else re.escape(expected)
    assert re.fullmatch("error: " + pattern, line), line
    cache = Cache(tmp_path / "cache")
    assert not any(cache.is_complete(stage, path.name) for stage in ("fit", "synthetic")
                   for path in (tmp_path / "cache" / stage).glob("*/*"))  # no entry a later run would trust


@pytest.mark.reliability("fault")
def test_verbose_shows_the_generators_traceback(site, tmp_path):
    result = subprocess.run([sys.executable, "-m", "cxrbench", "--verbose", "agreement", "--generator", "divides",
                             *AGREEMENT[1:], *_places(tmp_path)], capture_output=True, text=True, timeout=600,
                            env=environment(site))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "return total / parts" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: generator divides failed in generate()")


@pytest.mark.reliability("fault")
def test_the_one_line_survives_the_worker_pool_and_the_cache_keeps_nothing(site, tmp_path, capfd):
    config = RunConfig(tasks=["phantom_cls"], generators=["divides"], regimes=["scarce"], seeds=2, ratios=[0.5])
    with on_path(site):
        [plan] = plan_tasks(config, tmp_path)
        cells = plan.arms[0].cells
        with pytest.raises(GeneratorError) as failed:
            execute(cells, str(tmp_path), workers=2)
    assert re.fullmatch(r"generator divides failed in generate\(\) on task phantom_cls \(regime scarce, seed [01]\): "
                        r"ZeroDivisionError: float division by zero \(faultypkg/core.py:2\)", str(failed.value))
    cache = Cache(tmp_path)
    assert not any(cache.is_complete(stage, cell.synthetic_key if stage == "synthetic" else cell.key)
                   for cell in cells for stage in ("synthetic", "downstream"))
    assert "plugin skipped" not in capfd.readouterr().err  # the workers leave that warning to the parent


def test_only_failures_through_the_generators_code_are_blamed_on_it(site):
    with on_path(site):
        from faultypkg.gen import Divides

        with pytest.raises(DataError, match="^as it was$"), blamed_on(Divides, "on task t"):
            raise DataError("as it was")  # cxrbench's own one-line errors pass unchanged
        with pytest.raises(KeyError), blamed_on(Divides, "on task t"):
            {}["cxrbench's own bug"]  # never went through the generator's code: not the generator's fault
