"""Rendering a RunResult for people: rich tables in the terminal, Markdown for READMEs and PRs.

The terminal shows the primary analysis only (the verdict, Δ and its interval, in 80 columns); the
secondary numbers (seed-only and patient-only intervals, the paper's one-sided t-test) are in the
Markdown and the JSON. Where a run holds real_extra, both formats add a small second table per task:
each arm's transfer efficiency, Δ(arm) / Δ(real_extra) against real_only. A comparison whose subgroup
analysis found something (the arm helps one patient group and hurts another; a gap between groups) gets one line
under the tables; the rest of the subgroup numbers are in the JSON.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .protocol import BASELINE
from .quality_report import QUALITY_COLUMNS, QUALITY_NOTE, QUALITY_TITLE, quality_row, quality_title
from .schemas import ComparisonResult, RunResult, TaskResult, TransferEfficiency

MARKDOWN_COLUMNS = ["task", "regime", "n real+syn", "generator", "vs", "reference", "arm", "Δ", "95% CI", "p Holm",
                    "verdict", "MDE", "95% CI (t, seeds)", "95% CI (bootstrap, patients)", "p (one-sided t)"]
EFFICIENCY_TITLE = "transfer efficiency (Δ gen / Δ real_extra)"
EFFICIENCY_COLUMNS = ["arm", "ratio", "efficiency", "95% CI", "note"]


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def _interval(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]"


def verdict_text(comparison: ComparisonResult) -> str:
    """The verdict in a few words: a null verdict carries what the test could have seen."""
    if comparison.verdict == "no detectable difference":
        return f"n.d. (MDE {comparison.mde:.3f})"
    return comparison.verdict


def _title(task: TaskResult) -> str:
    b = task.baseline
    return (f"{task.task.name} · {task.regime} ({task.n_train_real} real) · {task.task.metric} · "
            f"real_only {b.mean:.3f} ± {b.std:.3f}")


def _terminal_table(task: TaskResult) -> Table:
    table = Table(title=_title(task), box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False,
                  title_justify="left")
    for column in ("arm", "vs", "Δ", "95% CI", "p Holm", "verdict"):
        table.add_column(column, justify="left" if column in ("arm", "vs", "verdict") else "right", no_wrap=True)
    for c in task.comparisons:
        table.add_row(c.generator if c.ratio in task.task.default_ratios else f"{c.generator} ×{c.ratio:g}",
                      c.reference, f"{c.delta:+.3f}", _interval(c.ci), _p(c.p_holm), verdict_text(c))
    return table


def subgroup_lines(result: RunResult) -> list[str]:
    """One line per comparison with subgroup findings (`SubgroupAnalysis.findings`); none without findings."""
    return [f"subgroups · {task.task.name} · {task.regime} · {c.generator} ×{c.ratio:g} vs {c.reference}: "
            f"{'; '.join(findings)}"
            for task in result.tasks for c in task.comparisons
            if c.subgroups is not None and (findings := c.subgroups.findings)]


def efficiency_rows(task: TaskResult) -> list[list[str]]:
    """One row per arm whose comparison with real_only carries a transfer efficiency: arm, ratio, value, interval,
    note (the reason when there is no value)."""
    def value(e: TransferEfficiency) -> list[str]:
        if e.value is None or e.ci_low is None or e.ci_high is None:
            return ["n/a", ""]
        return [f"{e.value:.2f}", f"[{e.ci_low:.2f}, {e.ci_high:.2f}]"]

    return [[c.generator, f"{c.ratio:g}", *value(e), e.note or ""]
            for c in task.comparisons if (e := c.transfer_efficiency) is not None]


def _efficiency_table(task: TaskResult, rows: list[list[str]]) -> Table:
    title = f"{task.task.name} · {task.regime} · {EFFICIENCY_TITLE}"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False,
                  title_justify="left", min_width=len(title))
    for column in EFFICIENCY_COLUMNS:
        table.add_column(column, justify="right" if column in ("efficiency", "95% CI") else "left",
                         no_wrap=column != "note")
    for row in rows:
        table.add_row(*row)
    return table


def _quality_table(task: TaskResult) -> Table:
    title = quality_title(task)
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False,
                  title_justify="left")
    for column in QUALITY_COLUMNS:
        table.add_column(column, justify="left" if column in ("generator", QUALITY_COLUMNS[-1]) else "right",
                         no_wrap=column != QUALITY_COLUMNS[-1])
    for quality in task.quality:
        table.add_row(*quality_row(quality))
    return table


def rich_report(result: RunResult) -> Group:
    """One table per task and regime, then how to read them and what the run lacks."""
    seeds = len(result.tasks[0].baseline.seeds) if result.tasks else 0
    profile = (f", smoke profile {result.smoke_profile_version} (a regression check, not the protocol)"
               if result.config.profile == "smoke" else "")
    notes = [f"cxrbench protocol {result.protocol_version}{profile}; Δ = arm − vs over {seeds} paired seeds. "
             "95% CI and p: seeds and test patients combined; p Holm over each generator's protocol family; "
             "verdict two-sided at 0.05; n.d. = no detectable difference, MDE = the |Δ| it detects with 80% "
             "power. Secondary numbers: --format markdown or json."]
    notes += [f"incomplete: {generator} lacks {', '.join(members)} (counted as p = 1)"
              for generator, members in result.incomplete.items()]
    notes += policy_notes(result)
    notes += verification_notes(result)
    notes += [QUALITY_NOTE] if any(task.quality for task in result.tasks) else []
    tables = []
    for task in result.tasks:
        tables += [_terminal_table(task), Text("")]
        if rows := efficiency_rows(task):
            tables += [_efficiency_table(task, rows), Text("")]
        if task.quality:
            tables += [_quality_table(task), Text("")]
    return Group(*tables, *(Text(line) for line in subgroup_lines(result)),
                 *(Text(note, style="dim") for note in notes))


def rows(result: RunResult) -> list[list[str]]:
    out = []
    for task in result.tasks:
        arms = {(a.generator, a.ratio): a for a in task.arms}
        for c in task.comparisons:
            arm = arms[(c.generator, c.ratio)]
            reference = arms.get((c.reference, c.ratio), task.baseline)
            out.append([
                f"{task.task.name} ({task.task.metric})", task.regime, f"{arm.n_real}+{arm.n_synthetic}", c.generator,
                c.reference, f"{c.reference_mean:.3f} ± {reference.std:.3f}", f"{c.arm_mean:.3f} ± {arm.std:.3f}",
                f"{c.delta:+.3f}", _interval(c.ci), _p(c.p_holm), c.verdict, f"{c.mde:.3f}", _interval(c.t_ci),
                _interval(c.boot_ci), _p(c.p_t_greater),
            ])
    return out


def markdown(result: RunResult) -> str:
    lines = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(result)]
    efficiency = [[task.task.name, task.regime, *row] for task in result.tasks for row in efficiency_rows(task)]
    if efficiency:
        columns = ["task", "regime", *EFFICIENCY_COLUMNS]
        lines += [f"\n**{EFFICIENCY_TITLE}**, against real_only at the same ratio (95% Fieller interval)\n",
                  "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in efficiency]
    quality = [[task.task.name, task.regime, *quality_row(q)] for task in result.tasks for q in task.quality]
    if quality:
        columns = ["task", "regime", *QUALITY_COLUMNS]
        lines += [f"\n**{QUALITY_TITLE}**: {QUALITY_NOTE}\n", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in quality]
    lines += [f"\n{line}" for line in subgroup_lines(result)]
    lines += [f"\nIncomplete: `{generator}` lacks {', '.join(members)} (counted as p = 1 in the correction)."
              for generator, members in result.incomplete.items()]
    lines += [f"\n{note}" for note in [*policy_notes(result), *verification_notes(result)]]
    return "\n".join(lines) + "\n"


def policy_notes(result: RunResult) -> list[str]:
    """The run's condition policy where it is not the protocol's: an exploratory run, never submitted."""
    policy = result.config.condition_policy
    return [f"conditions: {policy.describe()} (exploratory, not the protocol's: never submitted)"] \
        if policy.changes() else []


def verification_notes(result: RunResult) -> list[str]:
    """The verification level each generator's entry would get from this run, and what the levels shown mean; none
    for a smoke run or an exploratory condition policy, which are never submitted."""
    from .verification import level_notes, run_levels

    if result.config.profile != "protocol" or result.config.condition_policy.changes():
        return []

    tasks: dict[str, list[str]] = {}
    for task in result.tasks:
        for generator in dict.fromkeys(arm.generator for arm in task.arms):
            tasks.setdefault(generator, [])
            if task.task.name not in tasks[generator]:
                tasks[generator].append(task.task.name)
    return level_notes(run_levels([m for m in result.generators if m.name != BASELINE], tasks))
