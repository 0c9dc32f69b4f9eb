"""Plugins are loaded one by one: a broken one is named and skipped, the others and the in-repo generators work."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from cxrbench import registry
from cxrbench.errors import GeneratorError

from .fake_plugins import WORKING, environment, install_distribution, on_path

GENERATOR_HEAD = "from cxrbench.generator import Generator\nfrom cxrbench.schemas import GeneratorMeta\n"
META = 'GeneratorMeta(name="broken", version="1", role="generator", conditioning=["label"], description="b")'

BROKEN = {  # what the broken plugin's module holds, and the error its failure must name
    "missing_import": ("import missing_dependency_of_broken\n",
                       "ModuleNotFoundError: No module named 'missing_dependency_of_broken'"),
    "raises_at_import": ("1 / 0\n", "ZeroDivisionError: division by zero"),
    "not_a_generator": ("class Broken:\n    pass\n", "TypeError: it names <class 'brokenpkg.gen.Broken'>, not a "
                                                     "subclass of cxrbench.generator.Generator"),
    "no_meta": (GENERATOR_HEAD + "class Broken(Generator):\n    def generate(self, c, *, seed, batch_size=64):\n"
                "        return None\n", "TypeError: Broken.meta is not a GeneratorMeta"),
    "abstract": (GENERATOR_HEAD + f"class Broken(Generator):\n    meta = {META}\n",
                 "TypeError: Broken is abstract (it lacks generate)"),
}


def _site(tmp_path, broken_source: str):
    site = tmp_path / "site"
    install_distribution(site, "cxrbench-working", "1.2.0", {"workingpkg/__init__.py": "",
                                                              "workingpkg/gen.py": WORKING},
                         {"working": "workingpkg.gen:Working"})
    install_distribution(site, "cxrbench-broken", "0.3.0", {"brokenpkg/__init__.py": "",
                                                             "brokenpkg/gen.py": broken_source},
                         {"broken": "brokenpkg.gen:Broken"})
    return site


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_plugin_is_skipped_with_one_warning_and_the_others_work(tmp_path, caplog, kind):
    source, error = BROKEN[kind]
    with on_path(_site(tmp_path, source)), caplog.at_level(logging.WARNING, logger="cxrbench.registry"):
        assert registry.generator_class("working").meta.verified is False
        assert registry.generator_class("oracle").__name__ == "Oracle"
        assert "broken" not in registry.generator_names() and "working" in registry.generator_names()
        [failure] = registry.failed_plugins()
        with pytest.raises(GeneratorError) as refused:
            registry.generator_class("broken")
    assert (failure.entry_point, failure.target, failure.distribution, failure.error) == (
        "broken", "brokenpkg.gen:Broken", "cxrbench-broken 0.3.0", error)
    assert str(refused.value) == ("generator 'broken' is a plugin that failed to load: entry point broken = "
                                  "brokenpkg.gen:Broken (distribution cxrbench-broken 0.3.0, group "
                                  f"cxrbench.generators): {error}")
    [warning] = caplog.messages
    assert warning == f"plugin skipped, it failed to load: {str(refused.value).split(': ', 1)[1]}"


@pytest.mark.reliability("bad_input")
def test_a_plugin_cannot_shadow_an_in_repo_generator_and_says_so(tmp_path, caplog):
    site = tmp_path / "site"
    install_distribution(site, "fake-oracle", "1.0", {"fakeoracle.py": WORKING.replace('"working"', '"oracle"')},
                         {"oracle": "fakeoracle:Working"})
    with on_path(site), caplog.at_level(logging.WARNING, logger="cxrbench.registry"):
        assert registry.generator_class("oracle").__module__ == "cxrbench.generators.oracle"
        assert registry.failed_plugins() == []
    assert caplog.messages == ["plugin skipped: entry point oracle = fakeoracle:Working (distribution fake-oracle "
                               "1.0) is named 'oracle', a generator of cxrbench itself (a name cannot be shadowed)"]


def _cxrbench(site, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxrbench", *argv], capture_output=True, text=True, timeout=300,
                          env=environment(site))


@pytest.mark.reliability("bad_input")
def test_list_names_the_broken_plugin_and_running_it_fails_in_one_line(tmp_path):
    site = _site(tmp_path, BROKEN["missing_import"][0])
    listed = _cxrbench(site, "list", "generators")
    assert listed.returncode == 0, listed.stderr
    assert "working" in listed.stdout and "plugins that failed to load" in listed.stdout
    assert "brokenpkg.gen:Broken" in listed.stdout and "No module named" in listed.stdout
    warnings = listed.stderr.strip().splitlines()
    assert len(warnings) == 1 and "entry point broken = brokenpkg.gen:Broken" in warnings[0], listed.stderr
    ran = _cxrbench(site, "run", "--generator", "broken", "--task", "phantom_cls", "--seeds", "2",
                    "--out", str(tmp_path / "r.json"), "--cache-dir", str(tmp_path / "cache"))
    assert ran.returncode == 2
    error = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert error == ["error: generator 'broken' is a plugin that failed to load: entry point broken = "
                     "brokenpkg.gen:Broken (distribution cxrbench-broken 0.3.0, group cxrbench.generators): "
                     "ModuleNotFoundError: No module named 'missing_dependency_of_broken'"], ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.reliability("bad_input")
def test_validating_an_entry_of_a_broken_plugin_says_its_plugin_failed_to_load(tmp_path):
    from cxrbench.validate import validate

    committed = Path(__file__).resolve().parents[1] / "submissions" / "oracle"
    folder = tmp_path / "entries" / "broken"
    folder.mkdir(parents=True)
    card = (committed / "generator.yaml").read_text()
    (folder / "generator.yaml").write_text(card.replace("name: oracle", "name: broken"))
    result = (committed / "embedded__phantom_cls__scarce.json").read_text()
    (folder / "embedded__phantom_cls__scarce.json").write_text(result.replace('"oracle', '"broken'))
    with on_path(_site(tmp_path, BROKEN["missing_import"][0])), pytest.raises(GeneratorError) as refused:
        validate([folder], data_root=None)
    assert str(refused.value).startswith("generator 'broken' is a plugin that failed to load: entry point broken = "
                                         "brokenpkg.gen:Broken")
