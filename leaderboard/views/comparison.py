"""The comparison: two chosen generators side by side on every (suite, task, regime, ratio, reference) they share,
with the difference of their Δs and, where the entries allow one, its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from scipy import stats

from cxrbench.leaderboard.table import Entry, seed_scores
from cxrbench.leaderboard.views import permalink
from cxrbench.leaderboard.views.download import table_with_download
from cxrbench.leaderboard.views.text import interval, plain
from cxrbench.protocol import BASELINE

KEY = ["suite", "task", "regime", "ratio", "reference"]
NO_INTERVAL = "none: not one run"
EXPLANATION = (
    "Δ first − Δ second is the difference of the two Δs (both against the same reference). An interval for it "
    "needs both entries to come from one run: the same reference models (the same downstream cells, seed by seed), "
    "the same seeds and the same test patients. Where the entries show that, the interval is the 95% t-interval "
    "over the shared seeds of the per-seed difference: training noise only, since the per-patient scores it would "
    "need for test-set noise are not in the entries, so it is narrower than a primary interval. Elsewhere the "
    "difference has no interval: the two Δs' intervals cannot be combined without their covariance, and overlapping "
    "intervals do not mean the two are equal.")


def _arm_seeds(seeds: pd.DataFrame, where: list, arm: str, ratio: float) -> pd.DataFrame:
    """One arm's per-seed scores and cells in the (suite, task, regime) `where`, indexed by seed."""
    suite, task, regime = where
    match = (seeds["suite"] == suite) & (seeds["task"] == task) & (seeds["regime"] == regime)
    return seeds[match & (seeds["arm"] == arm) & (seeds["ratio"] == ratio)].set_index("seed")[["score", "cell"]]


def difference_interval(seeds_a: pd.DataFrame, a: str, seeds_b: pd.DataFrame, b: str,
                        key: tuple) -> tuple[float, float] | None:
    """The 95% t-interval of Δa − Δb over the seeds both entries hold (`seed_scores` tables), when both entries'
    reference arm is the same models with the same scores seed by seed; None otherwise."""
    *where, ratio, reference = key
    reference_ratio = 0.0 if reference == BASELINE else ratio  # the baseline arm's ratio is 0
    arm_a, arm_b = _arm_seeds(seeds_a, where, a, ratio), _arm_seeds(seeds_b, where, b, ratio)
    ref_a, ref_b = (_arm_seeds(seeds, where, reference, reference_ratio) for seeds in (seeds_a, seeds_b))
    shared = arm_a.index.intersection(arm_b.index).intersection(ref_a.index).intersection(ref_b.index)
    if len(shared) < 2 or not ref_a.loc[shared].equals(ref_b.loc[shared]):
        return None
    differences = (arm_a.loc[shared, "score"] - ref_a.loc[shared, "score"]) \
        - (arm_b.loc[shared, "score"] - ref_b.loc[shared, "score"])
    if np.ptp(differences) == 0:  # no spread: the t-interval degenerates to the value
        return float(differences.iloc[0]), float(differences.iloc[0])
    low, high = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    return float(low), float(high)


def comparison_table(table: pd.DataFrame, first: Entry, second: Entry) -> pd.DataFrame:
    """One row per cell and reference both generators have, in suite, task, regime (smallest first), ratio and
    reference (real_only first) order: the difference of their Δs and its interval first (the columns a reader
    came for stay in view), then each one's Δ, interval and verdict."""
    a, b = first.card.name, second.card.name
    both = pd.merge(table[table["generator"] == a], table[table["generator"] == b], on=KEY, suffixes=("_a", "_b"))
    both = both.assign(reference_order=both["reference"] != BASELINE).sort_values(
        ["suite", "task", "n_real_a", "ratio", "reference_order", "reference"], ignore_index=True)
    seeds_a, seeds_b = seed_scores(first), seed_scores(second)
    intervals = [difference_interval(seeds_a, a, seeds_b, b, key) for key in both[KEY].itertuples(index=False)]
    frame = both[KEY].copy()
    frame[f"Δ {a} − Δ {b}"] = both["delta_a"] - both["delta_b"]
    frame["95% CI of the difference (t over shared seeds)"] = [
        NO_INTERVAL if ci is None else interval(*ci) for ci in intervals]
    for name, side in ((a, "a"), (b, "b")):
        frame[f"{name}: Δ"] = both[f"delta_{side}"]
        frame[f"{name}: 95% CI"] = [interval(lo, hi) for lo, hi in zip(both[f"ci_low_{side}"], both[f"ci_high_{side}"])]
        frame[f"{name}: verdict"] = both[f"verdict_{side}"]
    return frame


def render(entries: list[Entry], table: pd.DataFrame) -> None:
    st.title("Comparison of two generators")
    by_name = {entry.card.name: entry for entry in entries}
    names = sorted(set(table["generator"]) & set(by_name))
    if len(names) < 2:
        st.info("A comparison needs two generators on the board.")
        return
    a = permalink.choice(st.sidebar.selectbox, "First generator", names, key="first")
    b = permalink.choice(st.sidebar.selectbox, "Second generator", names, key="second", default=names[1])
    st.caption(EXPLANATION)
    if a == b:
        st.info("Choose two different generators.")
        return
    frame = comparison_table(table, by_name[a], by_name[b])
    if frame.empty:
        st.info(f"{plain(a)} and {plain(b)} share no task, regime, ratio and reference.")
        return
    st.subheader(f"{plain(a)} and {plain(b)} on the {len(frame)} cell(s) they share")
    table_with_download(frame, f"cxrbench_{a}_vs_{b}.csv", key="csv_comparison",
                        pinned=["suite", "task", "regime"])
