"""The leaderboard's data: one row per (suite, task, regime, generator, ratio, reference) from `submissions/`.

Reads submission files only (through cxrbench's schemas), never model code: what CI validated is
what is shown. Per-seed scores and the generator cards are kept beside the table for the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxrbench.errors import ConfigError, SubmissionError
from cxrbench.fidelity.assessment import ArmQuality
from cxrbench.registry import get_task
from cxrbench.schemas import ComparisonResult
from cxrbench.submission import (
    CARD_FILE,
    GeneratorCard,
    TaskSubmission,
    load_card,
    load_task_submission,
    pydantic_problems,
    task_file_name,
    task_files,
)
from cxrbench.untrusted import irregular_paths
from cxrbench.verification import LEVELS, file_level

QUALITY_COLUMNS = ["fid", "fid_low", "fid_high", "kid", "precision", "recall", "density", "coverage",
                   "memorised_features", "memorised_pixels", "reidentified", "quality_extractor"]
"""An arm's quality as the table shows it: fidelity against the real test images, the share of synthetic images
closer to a training image than real test images are (features, pixels), the re-identified share."""
SHARED_EXTRACTOR = "in_domain"
"""The only extractor whose numbers enter the table's quality columns: every entry of a task is computed (and CI
recomputes it) in that task's one in-domain encoder, so its numbers share a column; other extractors' do not."""

COLUMNS = ["suite", "task", "regime", "n_real", "metric", "generator", "role", "conditioning", "ratio", "reference",
           "delta", "verdict", "ci_low", "ci_high", "p", "p_holm", "p_bonferroni", "mde", "t_ci_low", "t_ci_high",
           "boot_ci_low", "boot_ci_high", "p_t_greater", "reference_score", "arm_score", "arm_std", "n_seeds",
           "efficiency", "efficiency_low", "efficiency_high", "efficiency_note", "subgroup_deltas", "subgroup_findings",
           "verification", "ranked", "date",
           "revision", "generator_revision", *QUALITY_COLUMNS]


@dataclass(frozen=True)
class Entry:
    """One submission folder: its card and its task files."""

    folder: Path
    card: GeneratorCard
    tasks: list[TaskSubmission]


@dataclass(frozen=True)
class Board:
    """The entries that could be read, and one list of problems per entry that could not."""

    entries: list[Entry]
    refused: dict[str, list[tuple[str, str, str]]]


def read_board(root: Path) -> Board:
    """Every readable submission under `root`; an unreadable or hostile entry is refused alone, never the board."""
    if not root.is_dir():
        raise SubmissionError([(str(root), "", "no such submissions folder")])
    entries, refused = [], {}
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".") and (p.is_dir() or p.is_symlink())):
        try:
            entries.append(_entry(folder))
        except SubmissionError as error:
            refused[folder.name] = error.problems
    return Board(entries, refused)


def _entry(folder: Path) -> Entry:
    problems = [(str(path), "", what) for path, what in irregular_paths(folder)]
    if folder.is_symlink():
        raise SubmissionError([(str(folder), "", "is a symbolic link; an entry is a plain folder")])
    card = load_card(folder / CARD_FILE)
    if card.name != folder.name:
        problems.append((str(folder / CARD_FILE), "name", f"is {card.name!r}; it must equal the folder name"))
    tasks = []
    for path in task_files(folder):
        try:
            tasks.append(load_task_submission(path))
        except (OSError, ValueError) as error:
            problems += pydantic_problems(str(path), error)
    if problems:
        raise SubmissionError(problems)
    return Entry(folder, card, tasks)


def _rows(entry: Entry) -> list[dict]:
    card, rows = entry.card, []
    for sub in entry.tasks:
        arms = {(a.generator, a.ratio): a for a in sub.result.arms}
        role = next(m.role for m in sub.generators if m.name == sub.generator)
        path = entry.folder / task_file_name(sub.suite, sub.task, sub.result.regime)
        verification = file_level(path, sub, get_task(sub.task).public_data)
        qualities = {(q.generator, q.ratio): q for q in sub.result.quality if q.extractor.name == SHARED_EXTRACTOR}
        for c in sub.result.comparisons:
            rows.append({
                "suite": sub.suite, "task": sub.task, "regime": sub.result.regime, "n_real": sub.result.n_train_real,
                "metric": sub.result.task.metric, "generator": sub.generator, "role": role,
                "conditioning": ",".join(card.conditioning), "ratio": c.ratio, "reference": c.reference,
                "delta": c.delta, "verdict": c.verdict, "ci_low": c.ci[0], "ci_high": c.ci[1], "p": c.p,
                "p_holm": c.p_holm, "p_bonferroni": c.p_bonferroni, "mde": c.mde, "t_ci_low": c.t_ci[0],
                "t_ci_high": c.t_ci[1], "boot_ci_low": c.boot_ci[0], "boot_ci_high": c.boot_ci[1],
                "p_t_greater": c.p_t_greater, "reference_score": c.reference_mean, "arm_score": c.arm_mean,
                "arm_std": arms[(c.generator, c.ratio)].std, "n_seeds": c.n_seeds, **_efficiency(c), **_subgroups(c),
                "verification": verification, "ranked": verification == LEVELS[0],
                "date": sub.created.date().isoformat(), "revision": card.revision,
                "generator_revision": arms[(c.generator, c.ratio)].generator_revision,
                **_quality_columns(qualities.get((c.generator, c.ratio))),
            })
    return rows


def _quality_columns(quality: ArmQuality | None) -> dict:
    """The table's quality numbers of one arm (None for an arm without in-domain quality numbers)."""
    if quality is None:
        return dict.fromkeys(QUALITY_COLUMNS)
    f, memorised, reid = quality.fidelity, quality.memorisation, quality.reidentification
    return {"fid": f.fid.value, "fid_low": f.fid.ci_low, "fid_high": f.fid.ci_high, "kid": f.kid.value,
            "precision": f.precision.value, "recall": f.recall.value, "density": f.density.value,
            "coverage": f.coverage.value,
            "memorised_features": memorised["features"].share_below.value if "features" in memorised else None,
            "memorised_pixels": memorised["pixels"].share_below.value if "pixels" in memorised else None,
            "reidentified": None if reid is None else reid.share_above.value,
            "quality_extractor": quality.extractor.name}


def quality_table(entry: Entry) -> pd.DataFrame:
    """Every assessed arm of the entry (its generator's and its references'), each with the extractor its numbers
    were computed with: one row per (suite, task, regime, arm)."""
    rows = [{"suite": sub.suite, "task": sub.task, "regime": sub.result.regime, "arm": q.generator, "ratio": q.ratio,
             "n_synthetic": q.n_synthetic, **_quality_columns(q),
             "memorised_features_p": q.memorisation["features"].p_value if "features" in q.memorisation else None,
             "memorised_pixels_p": q.memorisation["pixels"].p_value if "pixels" in q.memorisation else None,
             "reidentified_p": None if q.reidentification is None else q.reidentification.p_value}
            for sub in entry.tasks for q in sub.result.quality]
    return pd.DataFrame(rows)


def _subgroups(c: ComparisonResult) -> dict:
    """Δ per patient group (e.g. "sex: F +0.04, M +0.06"), and what a reader must not miss (a group helped and another
    hurt, or a gap); None where the comparison has no subgroup analysis (a task without patient attributes)."""
    if c.subgroups is None:
        return {"subgroup_deltas": None, "subgroup_findings": None}
    deltas = "; ".join(f"{a.attribute}: " + ", ".join(f"{g.group} {'n/a' if g.delta is None else f'{g.delta:+.3f}'}"
                                                       for g in a.groups) for a in c.subgroups.attributes)
    return {"subgroup_deltas": deltas, "subgroup_findings": "; ".join(c.subgroups.findings)}


def _efficiency(c: ComparisonResult) -> dict:
    """The comparison's transfer efficiency (Δ / Δ real_extra) and its Fieller interval; None where it has none."""
    e = c.transfer_efficiency
    values = (None,) * 4 if e is None else (e.value, e.ci_low, e.ci_high, e.note)
    return dict(zip(("efficiency", "efficiency_low", "efficiency_high", "efficiency_note"), values, strict=True))


def build_table(entries: list[Entry]) -> pd.DataFrame:
    """The leaderboard table: one row per (suite, task, regime, generator, ratio, reference) comparison; within a
    comparison, recomputed entries first (only they are ranked), then spot-checked, then self-reported."""
    rows = [row for entry in entries for row in _rows(entry)]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    table["level_order"] = table["verification"].map(LEVELS.index)
    return table.sort_values(["suite", "task", "regime", "reference", "level_order", "delta"],
                             ascending=[True, True, True, True, True, False],
                             ignore_index=True).drop(columns="level_order")


def seed_scores(entry: Entry) -> pd.DataFrame:
    """Per-seed scores of the generator's arms and of the arms they were compared with, and the downstream cell
    each seed's model is (equal cells in two entries are one model: the entries share that arm's run)."""
    rows = [{"suite": sub.suite, "task": sub.task, "regime": sub.result.regime, "arm": arm.generator,
             "ratio": arm.ratio, "seed": s.seed, "score": s.score, "cell": s.cell}
            for sub in entry.tasks for arm in [sub.result.baseline, *sub.result.arms] for s in arm.seeds]
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, out: Path) -> None:
    """Parquet or JSON records by suffix, written to a temp file and renamed into place."""
    from cxrbench.cache import write_atomic

    if out.suffix == ".parquet":
        import io

        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    elif out.suffix == ".json":
        data = table.to_json(orient="records", indent=1, double_precision=15).encode()
    else:
        raise ConfigError(f"{out}: the table file must end in .parquet or .json")
    write_atomic(out, data)
