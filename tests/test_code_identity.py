"""The fit key and the revision change with a generator's code and its distribution's version, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxrbench import code_identity, registry
from cxrbench.code_identity import code_root
from cxrbench.errors import GeneratorError
from cxrbench.plan import fit_key
from cxrbench.registry import get_task

from .fake_plugins import WORKING, clear_registry, install_distribution, on_path


def _keys(site: Path) -> tuple[str, str]:
    """The fit key and revision of the `working` plugin, as a fresh process would compute them."""
    clear_registry()
    generator = registry.generator_class("working")(get_task("phantom_cls").meta)
    return fit_key(generator, "data"), generator.revision()


def _install(site: Path, version: str) -> None:
    for old in site.glob("*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    install_distribution(site, "cxrbench-working", version, {"workingpkg/__init__.py": "",
                                                              "workingpkg/gen.py": WORKING},
                         {"working": "workingpkg.gen:Working"})


def test_the_keys_follow_the_plugins_code_and_its_distributions_version(tmp_path):
    site = tmp_path / "site"
    _install(site, "1.0.0")
    with on_path(site):
        first = _keys(site)
        assert _keys(site) == first  # nothing changed, nothing to recompute
        helper = site / "workingpkg" / "helpers.py"
        helper.write_text("GREY = 0.5\n")  # any module of the package counts, not only the class's own
        edited = _keys(site)
        helper.write_text("GREY = 0.25\n")
        edited_again = _keys(site)
        helper.unlink()
        assert _keys(site) == first  # contents count, not modification times
        _install(site, "1.0.1")
        bumped = _keys(site)
    fits, revisions = zip(first, edited, edited_again, bumped)
    assert len(set(fits)) == len(set(revisions)) == 4


def test_in_repo_generators_are_identified_by_their_module_or_their_sub_package():
    generators = Path(registry.__file__).parents[1] / "generators"
    assert code_root("cxrbench.generators.oracle").resolve() == (generators / "oracle.py").resolve()
    assert code_root("cxrbench.generators.ldm.refined").resolve() == (generators / "ldm").resolve()
    ldm_text, proxy, oracle = (code_identity.code_identity(registry.generator_class(name))
                               for name in ("ldm_text", "ldm_text_proxy", "oracle"))
    assert ldm_text == proxy != oracle and "distributions" not in oracle[0]


@pytest.mark.reliability("bad_input")
def test_a_package_too_large_to_digest_is_refused_in_one_line(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _install(site, "1.0.0")
    for number in range(4):
        (site / "workingpkg" / f"part{number}.py").write_text("")
    monkeypatch.setattr(code_identity, "MAX_FILES", 3)
    with on_path(site), pytest.raises(GeneratorError) as refused:
        registry.generator_class("working")(get_task("phantom_cls").meta).revision()
    assert str(refused.value) == (f"generator working: its code, {site / 'workingpkg'}, holds more than 3 .py files, "
                                  f"too many to digest for its cache key: put the generator in a package of its own")
