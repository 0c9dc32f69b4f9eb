import json
import os
import sys
from collections import Counter

import pytest

from cxrbench.runner import run
from cxrbench.schemas import RunConfig

TINY = dict(train_size=24, seeds=2, ratios=[0.5], n_boot=200, quality=False)
"""A tiny run's settings: the Δs alone (tests of the quality numbers turn them on: tests/test_quality.py)."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One small end-to-end run of both embedded tasks, shared by the tests that read its result."""
    cache = tmp_path_factory.mktemp("cache")
    config = RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["oracle", "noise"], **TINY)
    result = run(config, cache, workers=1, show_progress=False)
    return config, cache, result


@pytest.fixture(scope="session")
def judge_cache(tmp_path_factory):
    """A stage cache shared by the tests that run `check-generator` on phantom_cls: its agreement judge (a
    downstream training on the task's real training split) is trained once per test session."""
    return tmp_path_factory.mktemp("judge-cache")


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest leaves the page it ran as `__main__`; a later test's spawned workers would re-run
    that page on start-up (the review page then dies without its environment: BrokenProcessPool)."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


# The reliability matrix (docs/reliability.md): every test marked `reliability(kind)` is one case of that
# kind; tests that inject faults add their own tallies through the `reliability_tally` fixture. The counts
# are printed at the end of the run and written to $CXRBENCH_RELIABILITY_REPORT when that is set, so the
# published figures come from the tests themselves.
RELIABILITY_KINDS = ("bad_input", "hostile_file", "fault")
_reliability_passed: Counter = Counter()
_reliability_failed: Counter = Counter()
_reliability_tallies: Counter = Counter()


def pytest_configure(config):
    config.addinivalue_line("markers", f"reliability(kind): one reliability-matrix case; kind in {RELIABILITY_KINDS}")


@pytest.fixture
def reliability_tally():
    """Add to the run's published counts, e.g. tally(faults_injected=1, results_identical=1)."""
    def tally(**counts: int) -> None:
        _reliability_tallies.update(counts)
    return tally


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    kinds = [m.args[0] for m in item.iter_markers("reliability")]
    if report.when != "call" or not kinds:
        return
    if kinds[0] not in RELIABILITY_KINDS:
        raise pytest.UsageError(f"{item.nodeid}: reliability kind {kinds[0]!r} is not one of {RELIABILITY_KINDS}")
    (_reliability_passed if report.passed else _reliability_failed)[kinds[0]] += 1


def pytest_terminal_summary(terminalreporter):
    if not (_reliability_passed or _reliability_failed):
        return
    counts = {"passed": dict(_reliability_passed), "failed": dict(_reliability_failed),
              "tallies": dict(_reliability_tallies)}
    terminalreporter.write_line(f"reliability matrix: {json.dumps(counts, sort_keys=True)}")
    target = os.environ.get("CXRBENCH_RELIABILITY_REPORT")
    if target:
        with open(target, "w") as handle:
            json.dump(counts, handle, indent=1, sort_keys=True)
