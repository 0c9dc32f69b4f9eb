"""The leaderboard's overview, comparison, CSV downloads, permalinks and tied ranks, in Streamlit's AppTest.

Most tests run on a small synthetic board: entries written here from one committed task file each
(predictions and gallery left out, Δ and interval chosen), so a tie or a transfer efficiency is built
rather than edited into a committed entry. The overview and comparison are also checked on the
committed entries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from cxrbench.leaderboard.ranks import overlap_ranks, rank_labels
from cxrbench.leaderboard.table import build_table, read_board
from cxrbench.leaderboard.views.comparison import NO_INTERVAL
from cxrbench.schemas import TransferEfficiency
from cxrbench.submission import load_task_submission
from tests.leaderboard_app import open_app

REPO = Path(__file__).resolve().parents[1]
SUBMISSIONS = REPO / "submissions"
EMBEDDED = SUBMISSIONS / "oracle" / "embedded__phantom_cls__scarce.json"
OPEN = SUBMISSIONS / "classic_aug" / "open__pneumonia_cls__scarce.json"
SPREAD = (0.02, -0.01, 0.0, 0.01, -0.02)
"""Per-seed departures from an arm's Δ (they average zero, so the arm's Δ is the chosen one)."""

pytestmark = pytest.mark.skipif(not EMBEDDED.exists() or not OPEN.exists(),
                                reason="the committed submissions are missing")


def _verdict(ci: tuple[float, float]) -> str:
    return "helps" if ci[0] > 0 else "hurts" if ci[1] < 0 else "no detectable difference"


def write_entry(root: Path, name: str, cells: dict[Path, tuple[float, tuple[float, float]]], *, verified: bool = True,
                spread: float = 1.0, efficiency: TransferEfficiency | None = None,
                own_baseline: bool = False) -> None:
    """An entry of generator `name` with one small task file per committed `cells` template: Δ and interval as
    given, per-seed scores the template baseline's plus Δ plus `spread` × SPREAD. `own_baseline` gives its
    real_only arm other downstream cells (as an entry from another run has); `verified=False` makes it
    spot-checked."""
    folder = root / name
    folder.mkdir(parents=True)
    for template, (delta, ci) in cells.items():
        sub = load_task_submission(template)
        base = sub.result.baseline
        if own_baseline:
            base = base.model_copy(update={"seeds": [s.model_copy(update={"cell": f"other-{s.cell}"})
                                                      for s in base.seeds]})
        seeds = [s.model_copy(update={"score": s.score + delta + spread * j, "cell": f"{name}-{s.seed}"})
                 for s, j in zip(base.seeds, SPREAD, strict=True)]
        arm = sub.result.arms[0].model_copy(update={"generator": name, "seeds": seeds, "mean": base.mean + delta})
        comparison = sub.result.comparisons[0].model_copy(update={
            "generator": name, "delta": delta, "ci": ci, "verdict": _verdict(ci), "arm_mean": base.mean + delta,
            "transfer_efficiency": efficiency, "subgroups": None})
        result = sub.result.model_copy(update={"baseline": base, "arms": [arm], "comparisons": [comparison],
                                               "quality": []})
        meta = sub.generators[0].model_copy(update={"name": name, "role": "generator", "verified": verified})
        sub = sub.model_copy(update={"generator": name, "verified": verified, "generators": [meta], "result": result,
                                     "predictions": "", "gallery": [],
                                     "closest_pairs": None})
        (folder / template.name).write_text(sub.model_dump_json())
    card = yaml.safe_load((SUBMISSIONS / "oracle" / "generator.yaml").read_text())
    (folder / "generator.yaml").write_text(yaml.safe_dump({**card, "name": name}))


TIES = {  # name: (Δ, primary interval), all on embedded phantom_cls scarce
    "alpha": (0.15, (0.10, 0.20)),
    "beta": (0.10, (0.05, 0.15)),   # overlaps alpha: tied
    "solo": (0.09, (0.04, 0.14)),   # overlaps alpha and beta: tied; another run's baseline
    "gamma": (0.02, (0.00, 0.04)),  # below alpha and beta; touches solo (a shared bound is overlap): 3
    "dim": (-0.07, (-0.10, -0.05)),  # below all four: 5
    "ext": (0.35, (0.30, 0.40)),    # spot-checked: unranked, and never counted above another
}
TIE_RANKS = {"alpha": "=1", "beta": "=1", "solo": "=1", "gamma": "3", "dim": "5", "ext": "-"}


@pytest.fixture()
def board(tmp_path) -> Path:
    """The tie board: the TIES entries on embedded phantom_cls scarce; alpha and beta also on open pneumonia_cls
    scarce; alpha carries a transfer efficiency."""
    for spread, (name, (delta, ci)) in enumerate(TIES.items(), start=1):
        cells = {EMBEDDED: (delta, ci)}
        if name in ("alpha", "beta"):
            cells[OPEN] = (delta / 2, (ci[0] / 2, ci[1] / 2))
        write_entry(tmp_path, name, cells, spread=spread, verified=name != "ext", own_baseline=name == "solo",
                    efficiency=TransferEfficiency(value=0.8, ci_low=0.5, ci_high=1.1) if name == "alpha" else None)
    return tmp_path


def shown(at: AppTest) -> pd.DataFrame:
    assert not at.exception, at.exception
    return at.dataframe[0].value


# --- ties ---------------------------------------------------------------------------------------------------------

intervals = st.lists(st.tuples(st.floats(-1, 1), st.floats(0, 1)).map(lambda t: (t[0], t[0] + t[1])),
                     min_size=1, max_size=12)


@given(intervals)
def test_an_interval_wholly_above_another_ranks_better_and_equal_intervals_tie(pairs):
    lows, highs = [lo for lo, _ in pairs], [hi for _, hi in pairs]
    ranks = overlap_ranks(lows, highs)
    assert min(ranks) == 1 and max(ranks) <= len(pairs)
    for i, j in ((i, j) for i in range(len(pairs)) for j in range(len(pairs))):
        if lows[i] > highs[j]:
            assert ranks[i] < ranks[j]
        if pairs[i] == pairs[j]:
            assert ranks[i] == ranks[j]
    labels = rank_labels(lows, highs, [True] * len(pairs))
    assert all(label.startswith("=") == (ranks.count(rank) > 1) for label, rank in zip(labels, ranks, strict=True))


def test_ties_are_shown_as_ties_on_the_ranking_and_the_overview(monkeypatch, board):
    at = open_app(monkeypatch, board, {"page": "ranking"})
    ranking = shown(at)
    assert dict(zip(ranking["generator"], ranking["rank"], strict=True)) == TIE_RANKS
    assert ranking["generator"].tolist() == ["alpha", "beta", "solo", "gamma", "dim", "ext"]  # by rank, then Δ
    at = open_app(monkeypatch, board, {"page": "overview", "suites": "embedded", "columns": ["rank"]})
    overview = shown(at)
    assert dict(zip(overview["generator"], overview["embedded · phantom_cls · scarce ×1 | rank"], strict=True)) \
        == TIE_RANKS


# --- overview -----------------------------------------------------------------------------------------------------

def test_overview_shows_every_generator_in_every_cell_of_the_committed_entries(monkeypatch):
    at = open_app(monkeypatch, SUBMISSIONS)
    overview = shown(at)
    table = build_table(read_board(SUBMISSIONS).entries)
    assert overview["generator"].tolist() == sorted(table["generator"].unique())
    cells = overview.columns[1:]
    assert len(cells) == len(table.drop_duplicates(["suite", "task", "regime", "ratio"]))
    assert cells[0] == "embedded · phantom_cls · scarce ×1"  # the smallest regime first
    oracle = overview.set_index("generator").loc["oracle"]
    row = table[(table["generator"] == "oracle") & (table["task"] == "phantom_cls") & (table["regime"] == "scarce")]
    delta, low, high = row[["delta", "ci_low", "ci_high"]].iloc[0]
    assert oracle[cells[0]] == f"{delta:+.3f} [{low:+.3f}, {high:+.3f}] helps"
    assert oracle["open · pneumonia_cls · scarce ×1"] == ""  # the oracle has no open entry
    # no committed entry carries a transfer efficiency: that group is not offered; they carry quality and subgroups
    assert at.sidebar.multiselect(key="columns").options == ["Δ [95% CI] verdict", "rank", "p Holm", "MDE (80%)",
                                                             "verification", "fidelity (in-domain features)",
                                                             "privacy (in-domain features)", "Δ per patient group"]
    at.sidebar.multiselect(key="suites").set_value(["open"]).run()
    at.sidebar.multiselect(key="columns").set_value(["delta", "p_holm"]).run()
    only_open = shown(at)
    assert "oracle" not in set(only_open["generator"])
    assert len(only_open.columns) == 1 + 2 * 4 and all(c.startswith("open ·") for c in only_open.columns[1:])
    assert only_open.columns[1:3].tolist() == ["open · covid_lung_seg · scarce ×1",  # a cell's groups side by side
                                               "open · covid_lung_seg · scarce ×1 | p Holm"]


def test_overview_offers_transfer_efficiency_where_an_entry_carries_it(monkeypatch, board):
    at = open_app(monkeypatch, board, {"suites": "embedded", "columns": ["delta", "efficiency"]})
    overview = shown(at).set_index("generator")
    efficiency = overview["embedded · phantom_cls · scarce ×1 | transfer efficiency [95% CI]"]
    assert efficiency["alpha"] == "0.80 [0.50, 1.10]" and set(efficiency.drop("alpha")) == {""}
    assert overview.loc["ext", "embedded · phantom_cls · scarce ×1"] \
        == "+0.350 [+0.300, +0.400] helps (spot-checked)"


# --- comparison ---------------------------------------------------------------------------------------------------

def _per_seed(generator: str, file: str, arm: str) -> list[float]:
    sub = load_task_submission(SUBMISSIONS / generator / file)
    arms = [sub.result.baseline, *sub.result.arms]
    return [s.score for s in next(a for a in arms if a.generator == arm).seeds]


def test_comparison_of_two_committed_entries_from_one_run(monkeypatch):
    at = open_app(monkeypatch, SUBMISSIONS, {"page": "comparison", "first": "oracle", "second": "classic_aug"})
    frame = shown(at)
    assert frame[["task", "regime"]].values.tolist() == [["phantom_cls", "scarce"], ["phantom_cls", "full"],
                                                         ["phantom_seg", "scarce"], ["phantom_seg", "full"]]
    first = frame.iloc[0]
    assert first["Δ oracle − Δ classic_aug"] == pytest.approx(first["oracle: Δ"] - first["classic_aug: Δ"])
    # one run: the same real_only models, so the per-seed differences give a t-interval
    oracle = _per_seed("oracle", EMBEDDED.name, "oracle")
    classic = _per_seed("classic_aug", EMBEDDED.name, "classic_aug")
    low, high = stats.ttest_rel(oracle, classic).confidence_interval(0.95)
    assert first["95% CI of the difference (t over shared seeds)"] == f"[{low:+.3f}, {high:+.3f}]"


def test_comparison_gives_no_interval_across_runs_and_needs_two_generators(monkeypatch, board):
    at = open_app(monkeypatch, board, {"page": "comparison", "first": "alpha", "second": "solo"})
    frame = shown(at)
    assert frame["95% CI of the difference (t over shared seeds)"].tolist() == [NO_INTERVAL]
    assert frame["Δ alpha − Δ solo"].tolist() == [pytest.approx(0.06)]
    at.sidebar.selectbox(key="second").set_value("beta").run()
    both = shown(at)  # alpha and beta share two cells and one run: Δs 0.05 apart, seeds spread 1 and 2
    assert both["Δ alpha − Δ beta"].tolist() == [pytest.approx(0.05), pytest.approx(0.025)]
    assert both["95% CI of the difference (t over shared seeds)"].iloc[0] != NO_INTERVAL
    at.sidebar.selectbox(key="second").set_value("alpha").run()
    assert not at.dataframe and [i.value for i in at.info] == ["Choose two different generators."]


# --- CSV ----------------------------------------------------------------------------------------------------------

@pytest.fixture()
def downloads(monkeypatch) -> list[bytes]:
    """What each st.download_button hands the browser, in order."""
    saved: list[bytes] = []
    store = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if mimetype == "text/csv":
            saved.append(path_or_data)
        return store(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return saved


@pytest.mark.parametrize("link", [
    {"page": "overview", "suites": "open", "columns": ["rank", "delta"]},
    {"page": "ranking", "suite": "embedded", "ranked_only": "true", "ci": "boot_ci"},
    {"page": "comparison", "first": "beta", "second": "alpha"},
], ids=["overview", "ranking", "comparison"])
def test_the_csv_download_is_exactly_the_table_shown(monkeypatch, board, downloads, link):
    frame = shown(open_app(monkeypatch, board, link))
    assert len(frame) > 1
    assert downloads[-1] == frame.to_csv(index=False).encode()


# --- permalinks ---------------------------------------------------------------------------------------------------

def _ranking_view(at: AppTest) -> None:
    at.sidebar.selectbox(key="suite").set_value("open").run()
    at.sidebar.selectbox(key="task").set_value("pneumonia_cls").run()
    at.sidebar.multiselect(key="conditioning").set_value(["label"]).run()
    at.radio(key="ci").set_value("t_ci").run()


def _overview_view(at: AppTest) -> None:
    at.sidebar.multiselect(key="suites").set_value(["open"]).run()
    at.sidebar.multiselect(key="columns").set_value(["efficiency", "delta"]).run()


def _comparison_view(at: AppTest) -> None:
    at.sidebar.selectbox(key="first").set_value("solo").run()
    at.sidebar.selectbox(key="second").set_value("gamma").run()


VIEWS = {"ranking": _ranking_view, "overview": _overview_view, "comparison": _comparison_view,
         "generator": lambda at: at.sidebar.selectbox(key="generator").set_value("dim").run()}


@pytest.mark.parametrize("page", list(VIEWS))
def test_a_copied_url_reproduces_the_view(monkeypatch, board, page):
    at = open_app(monkeypatch, board)
    at.sidebar.radio(key="page").set_value(page).run()
    VIEWS[page](at)
    before = shown(at)
    link = dict(at.query_params)
    assert link["page"] == page and len(link) > 1
    again = open_app(monkeypatch, board, link)
    assert shown(again).equals(before)
    assert dict(again.query_params) == link and not again.warning
    widgets = [*again.sidebar.selectbox, *again.sidebar.multiselect, *again.radio]
    assert {w.key: w.value for w in widgets} == {w.key: w.value for w in [*at.sidebar.selectbox,
                                                                        *at.sidebar.multiselect, *at.radio]}


PAGES = "('overview', 'ranking', 'comparison', 'generator', 'protocol')"
GENERATORS = "('alpha', 'beta', 'dim', 'ext', 'gamma', 'solo')"
HOSTILE = {  # query parameters: (the problems listed in plain text, the page then shown)
    "unknown page": ({"page": "admin"}, [f"page: 'admin' is not one of {PAGES}"], "overview"),
    "HTML in a filter": ({"page": "ranking", "suite": "<img src=x onerror=alert(1)>"},
                         ["suite: '<img src=x onerror=alert(1)>' is not one of ('embedded', 'open')"], "ranking"),
    "Markdown image and a bare URL": ({"page": "generator", "generator": "![x](http://example.com/a.png)"},
                                      [f"generator: '![x](http://example.com/a.png)' is not one of {GENERATORS}"],
                                      "generator"),
    "100 kB value": ({"page": "comparison", "first": "a" * 100_000},
                     [f"first: '{'a' * 60}'… is not one of {GENERATORS}"], "comparison"),
    "a choice given twice": ({"page": ["ranking", "comparison"]}, ["page: 2 values where one is expected"],
                             "overview"),
    "unknown parameter with HTML": ({"<b>x</b>": "1"}, ["parameter '<b>x</b>': not one this view has; ignored"],
                                    "overview"),
    "a flag that is not true or false": ({"page": "ranking", "ranked_only": "yes"},
                                         ["ranked_only: 'yes' where true or false is expected"], "ranking"),
    "one bad value in a multiselect": ({"suites": ["embedded", "javascript:alert(1)"]},
                                       ["suites: 'javascript:alert(1)' is not one of ('embedded', 'open')"],
                                       "overview"),
    "control characters": ({"page": "ranking", "task": "phantom\u202e_cls\x07"},
                           ["task: 'phantom\\u202e_cls\\x07' is not one of ('phantom_cls')"], "ranking"),
    "empty value": ({"page": ""}, [f"page: '' is not one of {PAGES}"], "overview"),
    "500 unknown parameters": ({f"k{i}": "v" for i in range(500)},
                               [f"parameter 'k{i}': not one this view has; ignored" for i in range(10)]
                               + ["... and 490 more"], "overview"),
}


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_bad_link_falls_back_to_the_defaults_with_a_notice(monkeypatch, board, case):
    link, problems, page = HOSTILE[case]
    at = open_app(monkeypatch, board, link)
    assert not at.exception
    count = 500 if case == "500 unknown parameters" else len(problems)
    assert [w.value for w in at.warning] == [f"This link has {count} problem(s); the defaults are shown instead of "
                                             "what it asks for."]
    assert at.text[0].value.splitlines() == problems  # st.text: plain text, never Markdown or HTML
    assert at.sidebar.radio(key="page").value == page
    default = open_app(monkeypatch, board, {"page": page})
    assert dict(at.query_params) == dict(default.query_params)  # the URL now names the default view
    assert shown(at).equals(shown(default))
