"""Opening the leaderboard app in Streamlit's AppTest, for the leaderboard's tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.components.v2.component_manager import BidiComponentManager
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "leaderboard" / "app.py"


def open_app(monkeypatch, root: Path, link: dict | None = None) -> AppTest:
    """The app on the submissions under `root`, run once as if opened at a URL with the query parameters `link`.

    Each new AppTest scans every installed package's metadata for Streamlit components (5 to 10 s on a loaded
    machine); the leaderboard uses none, so the scan is skipped.
    """
    monkeypatch.setattr(BidiComponentManager, "discover_and_register_components", lambda self, **kwargs: None)
    monkeypatch.setenv("CXRBENCH_SUBMISSIONS", str(root))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(link or {})
    return at.run()
