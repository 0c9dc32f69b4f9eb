"""`cxrbench check NEW BASELINE`: a regression check of a generator's comparisons against a baseline result.

Exit 0 when nothing regressed, 1 when something did (or could not be compared), 2 on bad input: the convention of
benchmark-comparison tools, so that a CI job fails on exit 1. The rule is in `cxrbench.regression`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import Format, console, one_line_errors, show

if TYPE_CHECKING:
    from ..regression import CheckReport, CheckRow

COLUMNS = ["task", "regime", "ratio", "reference", "Δ base", "Δ new", "diff", "p", "Holm p", "verdict base → new",
           "identical", "status"]
SHORT_VERDICTS = {"helps": "helps", "hurts": "hurts", "no detectable difference": "n.d."}


class CheckDirection(str, Enum):
    worse = "worse"
    any = "any"


def check(
    new: Annotated[Path, typer.Argument(help="The new result: a RunResult JSON, or a submission entry (folder or "
                                             "task file).")],
    baseline: Annotated[Path, typer.Argument(help="The baseline: a golden RunResult JSON, or the entry it "
                                                  "replaces.")],
    generator: Annotated[str | None, typer.Option(help="The generator to check, when NEW holds several.")] = None,
    baseline_generator: Annotated[str | None, typer.Option(
        help="The baseline's generator, to compare with another one (e.g. the reference LDM); default: the same.")
    ] = None,
    direction: Annotated[CheckDirection, typer.Option(
        help="worse: fail when a Δ fell (one-sided) or a verdict fell from helps; any: fail when a Δ moved either "
             "way (two-sided) or any verdict changed.")] = CheckDirection.worse,
    allow_missing: Annotated[bool, typer.Option(
        help="Pass comparisons missing on one side or computed under another version or profile.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="table, markdown (a pull-request comment) or json.")
                   ] = Format.table,
) -> None:
    """Compare a generator's comparisons with a baseline result's; exit 0 nothing regressed, 1 regression, 2 bad
    input."""
    from ..regression import check as run_check
    from ..regression import load

    with one_line_errors():
        report = run_check(load(new), load(baseline), generator=generator, baseline_generator=baseline_generator,
                           direction=direction.value, allow_missing=allow_missing)
    show(report, fmt, markdown=markdown, table=table)
    if fmt is Format.table:
        console.print(report.summary, style="bold green" if report.passed else "bold red", highlight=False)
    raise typer.Exit(code=0 if report.passed else 1)


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def _cells(row: CheckRow) -> list[str]:
    verdicts = " → ".join(SHORT_VERDICTS.get(v, "-") if v else "-" for v in (row.verdict_baseline, row.verdict_new))
    status = row.status + (f" ({row.note})" if row.note else "")
    return [row.task, row.regime, f"{row.ratio:g}", row.reference, _number(row.delta_baseline, "+.3f"),
            _number(row.delta_new, "+.3f"), _number(row.diff, "+.3f"), _p(row.p), _p(row.p_holm), verdicts,
            "-" if row.identical is None else "yes" if row.identical else "no", status]


def _title(report: CheckReport) -> str:
    against = report.generator if report.baseline_generator == report.generator else \
        f"{report.generator} against {report.baseline_generator}"
    tested = sum(row.p is not None for row in report.rows)
    return f"cxrbench check: {against}, direction {report.direction}, Holm over {tested} comparison(s) at α = " \
           f"{report.alpha:g}"


def table(report: CheckReport):
    from rich import box
    from rich.table import Table

    out = Table(title=_title(report), box=box.SIMPLE_HEAD, title_justify="left")
    for column in COLUMNS:
        out.add_column(column, no_wrap=column != "status")
    for row in report.rows:
        out.add_row(*_cells(row), style="red" if row.fails else None)
    return out


def markdown(report: CheckReport) -> str:
    """The check as a pull-request comment: a title, the table, the verdict line and what NEW and BASELINE were."""
    lines = [f"**{_title(report)}**", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |" for row in report.rows]
    lines += ["", f"**{report.summary}** (new: `{report.new}`; baseline: `{report.baseline}`)"]
    return "\n".join(lines) + "\n"
