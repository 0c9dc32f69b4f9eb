"""Ranks that show statistical ties as ties: the interval-overlap rule of public LLM arenas.

An entry's rank is 1 + the number of entries whose 95% interval of Δ lies wholly above its own. Two
entries whose intervals overlap are not told apart, so they can share a rank ("=2"); ranks may skip
("=1", "=1", "3"). The rule is conservative: two overlapping 95% intervals can still differ
significantly, so it shows more ties than a test of each difference would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

UNRANKED = "-"


def overlap_ranks(lows: Sequence[float], highs: Sequence[float]) -> list[int]:
    """1 + how many of the other intervals lie wholly above each one (a shared bound counts as overlap)."""
    return [1 + sum(low > high for low in lows) for high in highs]


def rank_labels(lows: Sequence[float], highs: Sequence[float], ranked: Sequence[bool]) -> list[str]:
    """The ranks of the `ranked` entries among themselves, "=k" where several share k; `UNRANKED` for the rest."""
    rows = [i for i, is_ranked in enumerate(ranked) if is_ranked]
    ranks = dict(zip(rows, overlap_ranks([lows[i] for i in rows], [highs[i] for i in rows]), strict=True))
    shared = Counter(ranks.values())
    return [UNRANKED if i not in ranks else f"={ranks[i]}" if shared[ranks[i]] > 1 else str(ranks[i])
            for i in range(len(ranked))]


def ranks_within(rows: pd.DataFrame, by: list[str]) -> pd.Series:
    """`rank_labels` of the primary intervals, computed within each group of `rows` that share the `by` columns."""
    labels = pd.Series(UNRANKED, index=rows.index, dtype=object)
    for _, group in rows.groupby(by, sort=False):
        labels[group.index] = rank_labels(group["ci_low"].tolist(), group["ci_high"].tolist(),
                                          group["ranked"].tolist())
    return labels
