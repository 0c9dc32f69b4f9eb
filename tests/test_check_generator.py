"""`cxrbench check-generator`: the controls pass or fail as they should, and each broken generator fails its row.

One cache for the session (`judge_cache`, shared with the example package's test): the agreement judge
(phantom_cls's recipe on its full training split) is trained once, by the first test, and loaded by the others."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrbench import registry
from cxrbench.cli import app
from cxrbench.generators.oracle import Oracle

TASK = "phantom_cls"


@pytest.fixture(scope="module")
def cache(judge_cache):
    return judge_cache


def _check(cache, *args: str):
    result = CliRunner().invoke(app, ["check-generator", *args, "--cache-dir", str(cache), "--format", "json"])
    return result.exit_code, result.output


def _failed(output: str) -> set[str]:
    return {c["check"] for c in json.loads(output)["checks"] if c["status"] == "fail"}


@pytest.mark.parametrize("generator", ["oracle", "classic_aug"])
def test_the_positive_control_and_the_reference_pass(cache, generator):
    code, output = _check(cache, generator, "--task", TASK)
    assert code == 0, output
    checks = {c["check"]: c for c in json.loads(output)["checks"]}
    assert checks["honours its conditions"]["status"] == "pass"
    assert checks["shape"]["measured"].startswith("(50, 64, 64)")
    assert "images/s" in checks["speed"]["measured"]


def test_noise_fails_honours_its_conditions_and_nothing_else(cache):
    code, output = _check(cache, "noise", "--task", TASK)
    assert code == 1
    assert _failed(output) == {"honours its conditions"}


def _renamed(name: str) -> object:
    return Oracle.meta.model_copy(update={"name": name})


class NanOracle(Oracle):
    meta = _renamed("nan_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        images = super().generate(conditions, seed=seed)
        images[0, :2, :3] = np.nan
        return images


class BrightOracle(Oracle):
    meta = _renamed("bright_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        return super().generate(conditions, seed=seed) * 2


class CroppedOracle(Oracle):
    meta = _renamed("cropped_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        return super().generate(conditions, seed=seed)[:, :32, :32]


class RestlessOracle(Oracle):
    """Draws from numpy's global generator: the same seed gives other images."""

    meta = _renamed("restless_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        images = super().generate(conditions, seed=seed)
        return np.clip(images + np.random.uniform(0, 1e-3, images.shape), 0, 1).astype(np.float32)


class SeedBlindOracle(Oracle):
    meta = _renamed("seed_blind_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        return super().generate(conditions, seed=0)


class CrashingOracle(Oracle):
    meta = _renamed("crashing_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        raise RuntimeError("CUDA out of [memory]")


class TextOracle(Oracle):
    meta = _renamed("text_oracle")

    def generate(self, conditions, *, seed, batch_size=64):
        return [["pixel"] * 64] * len(conditions)


BROKEN = {  # generator: the rows it must fail, exactly
    NanOracle: {"finite"},
    BrightOracle: {"range [0, 1]"},
    CroppedOracle: {"shape"},
    RestlessOracle: {"same seed (0), same images"},
    SeedBlindOracle: {"seed 1, other images"},
    CrashingOracle: {"generate"},
    TextOracle: {"dtype"},
}


@pytest.fixture()
def broken_generators(monkeypatch):
    classes = [f"{__name__}:{cls.__name__}" for cls in BROKEN]
    monkeypatch.setattr(registry, "GENERATOR_CLASSES", (*registry.GENERATOR_CLASSES, *classes))
    registry._in_repo_generators.cache_clear()
    yield
    monkeypatch.undo()
    registry._in_repo_generators.cache_clear()


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("cls", list(BROKEN), ids=[cls.meta.name for cls in BROKEN])
def test_a_broken_generator_fails_its_row(cache, broken_generators, cls):
    code, output = _check(cache, cls.meta.name, "--task", TASK)
    assert code == 1, output
    assert _failed(output) == BROKEN[cls]


def test_the_table_ends_in_one_summary_line(cache, broken_generators):
    result = CliRunner().invoke(app, ["check-generator", "nan_oracle", "--task", TASK, "--cache-dir", str(cache)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == ("nan_oracle: 6 of 7 checks pass; failed: finite "
                                                      "(phantom_cls)")


BAD_OPTIONS = {
    "unknown generator": (["no_such_gan"], "unknown generator 'no_such_gan'"),
    "unknown task": (["oracle", "--task", "no_such_task"], "unknown task 'no_such_task'"),
    "a task it cannot serve": (["oracle", "--task", "pneumonia_cls"], "serves suites ['embedded']"),
    "the baseline": (["real_only", "--task", TASK], "makes no synthetic images"),
    "too few images": (["oracle", "--count", "1"], "--count must be at least 2"),
    "markdown": (["oracle", "--format", "markdown"], "table or json, not markdown"),
    "an unknown option": (["oracle", "--generator-config", "{config}"], "not in the run"),
}


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    args, message = BAD_OPTIONS[case]
    config = tmp_path / "options.yaml"
    config.write_text("noise: {}\n")
    args = [arg.format(config=config) for arg in args]
    result = CliRunner().invoke(app, ["check-generator", *args, "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
