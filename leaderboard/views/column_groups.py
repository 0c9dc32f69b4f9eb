"""The overview's column groups: each shows one family of numbers in every (suite, task, regime, ratio) cell.

A family is one `ColumnGroup` in `GROUPS`: its name, how a row of the leaderboard table becomes a cell's
text, and whether the table holds any such number at all (a group with none is not offered, so nothing
is shown that no entry carries). Fidelity and privacy show the generator arm's numbers at the assessed
ratio, in the task's in-domain feature space only (`table.SHARED_EXTRACTOR`): numbers of other
extractors never share a column with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from cxrbench.leaderboard.views.text import interval
from cxrbench.verification import LEVELS


@dataclass(frozen=True)
class ColumnGroup:
    slug: str
    """Its name in a permalink."""
    title: str
    """Its name in the column headers and the chooser."""
    text: Callable[[pd.Series], str]
    """A row of the leaderboard table (one comparison) -> the text of its cell."""
    present: Callable[[pd.DataFrame], bool] = lambda table: True
    """Whether `table` holds any number of this group."""
    titled: bool = True
    """Whether its column headers name it after the cell (the Δ group's text says what it is)."""

    def header(self, cell: str) -> str:
        return f"{cell} | {self.title}" if self.titled else cell


def _summary(row: pd.Series) -> str:
    level = "" if row["verification"] == LEVELS[0] else f" ({row['verification']})"
    return f"{row['delta']:+.3f} {interval(row['ci_low'], row['ci_high'])} {row['verdict']}{level}"


def efficiency_text(row: pd.Series) -> str:
    """The transfer efficiency and its interval; n/a where the entry says why it has none, empty where it has none."""
    if pd.isna(row["efficiency"]):
        return "n/a" if isinstance(row["efficiency_note"], str) else ""
    return f"{row['efficiency']:.2f} [{row['efficiency_low']:.2f}, {row['efficiency_high']:.2f}]"


def any_efficiency(table: pd.DataFrame) -> bool:
    return bool(table["efficiency"].notna().any() or table["efficiency_note"].notna().any())


def _share(value: object) -> str:
    return "n/a" if pd.isna(value) else f"{value:.0%}"


def fidelity_text(row: pd.Series) -> str:
    """FID with its interval, KID, precision, recall, density, coverage; empty for an arm without them."""
    if pd.isna(row["fid"]):
        return ""
    return (f"FID {row['fid']:.2f} [{row['fid_low']:.2f}, {row['fid_high']:.2f}] · KID {row['kid']:.4f} · "
            f"P {row['precision']:.2f} R {row['recall']:.2f} D {row['density']:.2f} C {row['coverage']:.2f}")


def privacy_text(row: pd.Series) -> str:
    """Shares closer to a training image than real test images (features, pixels) and re-identified; n/a for a
    number the entry could not carry (pixels and re-identification need published images)."""
    if pd.isna(row["memorised_features"]):
        return ""
    return (f"closer than test: {_share(row['memorised_features'])} features, {_share(row['memorised_pixels'])} "
            f"pixels · re-identified {_share(row['reidentified'])}")


def subgroups_text(row: pd.Series) -> str:
    """Δ per patient group, then the finding (a group helped and another hurt, or a gap), or that there is none."""
    if not isinstance(row["subgroup_deltas"], str):
        return ""
    return f"{row['subgroup_deltas']} · {row['subgroup_findings'] or 'no subgroup finding'}"


def _any(column: str) -> Callable[[pd.DataFrame], bool]:
    return lambda table: column in table and bool(table[column].notna().any())


GROUPS: list[ColumnGroup] = [
    ColumnGroup("delta", "Δ [95% CI] verdict", _summary, titled=False),
    ColumnGroup("rank", "rank", lambda row: row["rank"]),
    ColumnGroup("p_holm", "p Holm", lambda row: f"{row['p_holm']:.2g}"),
    ColumnGroup("mde", "MDE (80%)", lambda row: f"{row['mde']:.3f}"),
    ColumnGroup("verification", "verification", lambda row: row["verification"]),
    ColumnGroup("efficiency", "transfer efficiency [95% CI]", efficiency_text, any_efficiency),
    ColumnGroup("fidelity", "fidelity (in-domain features)", fidelity_text, _any("fid")),
    ColumnGroup("privacy", "privacy (in-domain features)", privacy_text, _any("memorised_features")),
    ColumnGroup("subgroups", "Δ per patient group", subgroups_text, _any("subgroup_deltas")),
]
"""In the order their columns appear within a cell; the first is shown by default."""
