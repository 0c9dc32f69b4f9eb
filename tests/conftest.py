import sys

import pytest

from cxrbench.runner import run
from cxrbench.schemas import RunConfig

TINY = dict(train_size=24, seeds=2, ratios=[0.5], n_boot=200)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One small end-to-end run of both embedded tasks, shared by the tests that read its result."""
    cache = tmp_path_factory.mktemp("cache")
    config = RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["oracle", "noise"], **TINY)
    result = run(config, cache, workers=1, show_progress=False)
    return config, cache, result


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest leaves the page it ran as `__main__`; a later test's spawned workers would re-run
    that page on start-up (the review page then dies without its environment: BrokenProcessPool)."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
