"""The leaderboard's fidelity and privacy: table columns, overview column groups, their CSV, the generator page's
quality table and closest-pairs figure, in Streamlit's AppTest.

Entries are written here from one committed task file (as test_leaderboard_views does) with quality numbers computed
by cxrbench's own metrics on small random feature arrays: the board reads stored JSON, never the extractor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxrbench.closest_pairs import figure_file, figure_pixels, figure_png
from cxrbench.fidelity.assessment import ArmQuality, QualitySettings
from cxrbench.fidelity.identity import ExtractorIdentity
from cxrbench.fidelity.memorisation import memorisation, nearest_training
from cxrbench.fidelity.metrics import FidelitySettings, fidelity
from cxrbench.leaderboard.table import build_table, quality_table, read_board
from cxrbench.leaderboard.views.column_groups import GROUPS
from tests.leaderboard_app import open_app
from tests.test_leaderboard_views import EMBEDDED, OPEN, downloads, shown, write_entry  # noqa: F401 - a fixture

CELL = "embedded · phantom_cls · scarce ×1"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"


def _quality(generator: str, shift: float, extractor: str = "in_domain", *, pixels: bool = True) -> ArmQuality:
    """An arm's quality from cxrbench's metrics on random 8-d features (`shift` moves the synthetic ones away)."""
    rng = np.random.default_rng(len(generator))
    real, train = rng.normal(size=(60, 8)), rng.normal(size=(80, 8))
    synthetic = rng.normal(size=(50, 8)) + shift
    near = {"features": (nearest_training(synthetic, train), nearest_training(real, train))}
    if pixels:
        near["pixels"] = near["features"]
    identity = ExtractorIdentity(name=extractor, kind="small_cnn pooled", weights_sha256="ab" * 32, dim=8,
                                 input_size=(64, 64))
    settings = QualitySettings(fidelity=FidelitySettings(n_boot=20, kid_subset_size=20, kid_subsets=5))
    return ArmQuality(
        generator=generator, ratio=1.0, seed=0, synthetic_key="k" * 16, n_synthetic=50, n_real_test=60,
        n_real_train=80, extractor=identity, settings=settings, fidelity=fidelity(real, synthetic, settings.fidelity),
        fidelity_by_group={}, memorisation={space: memorisation(*pair, space=space, n_pairs=3)
                                            for space, pair in near.items()},
        no_reidentification="not in this test")


def _with_quality(folder: Path, template: Path, qualities: list[ArmQuality], figure: bool) -> None:
    path = folder / template.name
    data = json.loads(path.read_text())
    data["result"]["quality"] = [q.model_dump(mode="json") for q in qualities]
    if figure:
        regime = data["result"]["regime"]
        data["closest_pairs"] = figure_file(data["result"]["task"]["name"], regime)
        rng = np.random.default_rng(0)
        pixels = figure_pixels((rng.random((50, 64, 64)) * 65535).astype(np.uint16), rng.random((80, 64, 64)),
                               qualities[0].memorisation["pixels"].closest_pairs)
        (folder / "gallery").mkdir(exist_ok=True)
        (folder / data["closest_pairs"]).write_bytes(figure_png(pixels))
    path.write_text(json.dumps(data))


@pytest.fixture()
def board(tmp_path) -> Path:
    """near: in-domain numbers and a figure; far: in-domain numbers without pixel space; other: another
    extractor's numbers only (never in the shared columns); plain: no quality."""
    for name, delta in (("near", 0.1), ("far", 0.05), ("other", 0.02), ("plain", 0.0)):
        write_entry(tmp_path, name, {EMBEDDED: (delta, (delta - 0.05, delta + 0.05)),
                                     OPEN: (delta, (delta - 0.05, delta + 0.05))})
    _with_quality(tmp_path / "near", EMBEDDED, [_quality("near", 0.1)], figure=True)
    _with_quality(tmp_path / "far", EMBEDDED, [_quality("far", 3.0, pixels=False)], figure=False)
    _with_quality(tmp_path / "other", EMBEDDED, [_quality("other", 0.0, extractor="xrv_densenet")], figure=False)
    return tmp_path


def test_the_table_holds_in_domain_quality_per_comparison_and_no_other_extractors(board):
    entries = read_board(board).entries
    table = build_table(entries).set_index(["generator", "suite"])
    near = table.loc[("near", "embedded")]
    stored = _quality("near", 0.1)
    assert near["fid"] == pytest.approx(stored.fidelity.fid.value)
    assert near["memorised_pixels"] == pytest.approx(stored.memorisation["pixels"].share_below.value)
    assert near["quality_extractor"] == "in_domain"
    assert table.loc[("far", "embedded"), "fid"] > near["fid"]  # shifted features are farther from the real ones
    assert pd_isna(table.loc[("far", "embedded"), "memorised_pixels"])
    assert pd_isna(table.loc[("other", "embedded"), "fid"])  # another extractor's FID shares no column
    assert pd_isna(table.loc[("near", "open"), "fid"])
    other = quality_table(next(e for e in entries if e.card.name == "other"))
    assert other["quality_extractor"].tolist() == ["xrv_densenet"]  # shown on its page, with its extractor


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_fidelity_and_privacy_groups_are_offered_only_where_entries_carry_them(monkeypatch, board, downloads):  # noqa: F811
    at = open_app(monkeypatch, board, {"suites": "embedded", "columns": ["delta", "fidelity", "privacy"]})
    overview = shown(at).set_index("generator")
    fidelity_text = overview[f"{CELL} | fidelity (in-domain features)"]
    assert fidelity_text["near"].startswith("FID ") and " · P " in fidelity_text["near"]
    assert fidelity_text["other"] == "" and fidelity_text["plain"] == ""
    privacy = overview[f"{CELL} | privacy (in-domain features)"]
    assert "features" in privacy["near"] and "re-identified n/a" in privacy["near"]
    assert "n/a pixels" in privacy["far"]
    assert downloads[-1] == shown(at).to_csv(index=False).encode()  # the CSV holds the quality columns as shown
    assert "fidelity (in-domain features)" in downloads[-1].decode()
    for name in ("near", "far", "other"):  # without quality anywhere, the groups are not offered
        (board / name / EMBEDDED.name).unlink()
    at = open_app(monkeypatch, board)
    titles = {group.title for group in GROUPS}
    assert titles & set(at.sidebar.multiselect(key="columns").options) == {"Δ [95% CI] verdict", "rank", "p Holm",
                                                                           "MDE (80%)", "verification"}


def test_the_generator_page_shows_quality_and_the_closest_pairs_as_plain_text(monkeypatch, board):
    pairs = _quality("near", 0.1).memorisation["pixels"].closest_pairs
    at = open_app(monkeypatch, board, {"page": "generator", "generator": "near"})
    assert not at.exception, at.exception
    frames = [frame.value for frame in at.dataframe]
    quality = next(frame for frame in frames if "fid" in frame.columns)
    assert quality["arm"].tolist() == ["near"] and quality["quality_extractor"].tolist() == ["in_domain"]
    texts = [text.value for text in at.text]
    listing = next(text for text in texts if text.startswith("row 1: "))
    assert f"pixel distance {pairs[0].distance:.3f}" in listing and len(listing.splitlines()) == len(pairs) + 1
    assert len(at.get("image")) >= 1


def test_a_hostile_pair_listing_is_never_markup(monkeypatch, board):
    """Only numbers from the entry reach the listing, and it is st.text: a generator name with HTML in it stays
    escaped in the page's Markdown."""
    at = open_app(monkeypatch, board, {"page": "generator", "generator": "near"})
    markdown = " ".join(m.value for m in at.markdown)
    assert "<img" not in markdown and "Closest pairs" in markdown


def test_the_subgroup_group_shows_each_groups_delta_and_the_finding(monkeypatch, board):
    """The committed template's subgroup analysis, with a finding written in: the cell names every group's Δ and the
    finding; an entry without an analysis shows nothing."""
    from cxrbench.submission import load_task_submission

    analysis = load_task_submission(EMBEDDED).result.comparisons[0].subgroups
    sex = analysis.attributes[0].model_copy(update={"finding": "helps F, hurts M"})
    analysis = analysis.model_copy(update={"attributes": [sex, *analysis.attributes[1:]]})
    path = board / "near" / EMBEDDED.name
    data = json.loads(path.read_text())
    data["result"]["comparisons"][0]["subgroups"] = analysis.model_dump(mode="json")
    path.write_text(json.dumps(data))
    at = open_app(monkeypatch, board, {"suites": "embedded", "columns": ["delta", "subgroups"]})
    cells = shown(at).set_index("generator")[f"{CELL} | Δ per patient group"]
    groups = [g.group for a in analysis.attributes for g in a.groups]
    assert all(f"{group} " in cells["near"] for group in groups) and cells["near"].endswith("helps F, hurts M")
    assert cells["plain"] == ""
