"""Rendering a RunResult for people: a rich table in the terminal, Markdown for READMEs and PRs."""

from __future__ import annotations

from rich.table import Table

from .schemas import RunResult

COLUMNS = ["task", "generator", "ratio", "n real+syn", "vs", "reference", "arm", "Δ", "95% CI (t, seeds)",
           "95% CI (bootstrap, patients)", "p", "p Holm", "p Bonf."]


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def rows(result: RunResult) -> list[list[str]]:
    out = []
    for task in result.tasks:
        metric = task.task.metric
        if not task.comparisons:
            b = task.baseline
            out.append([task.task.name, b.generator, "0", f"{task.n_train_real}+0", "", f"{b.mean:.3f} ± {b.std:.3f}",
                        "", "", "", "", "", "", ""])
        arms = {(a.generator, a.ratio): a for a in task.arms}
        for c in task.comparisons:
            arm = arms[(c.generator, c.ratio)]
            reference = arms.get((c.reference, c.ratio), task.baseline)
            out.append([
                f"{task.task.name} ({metric})", c.generator, f"{c.ratio:g}", f"{arm.n_real}+{arm.n_synthetic}",
                c.reference, f"{c.reference_mean:.3f} ± {reference.std:.3f}", f"{c.arm_mean:.3f} ± {arm.std:.3f}",
                f"{c.delta:+.3f}", f"[{c.t_ci[0]:+.3f}, {c.t_ci[1]:+.3f}]",
                f"[{c.boot_ci[0]:+.3f}, {c.boot_ci[1]:+.3f}]", _p(c.p_value), _p(c.p_holm), _p(c.p_bonferroni),
            ])
    return out


def rich_table(result: RunResult) -> Table:
    seeds = result.tasks[0].baseline.seeds if result.tasks else []
    table = Table(title=f"cxrbench protocol {result.protocol_version}: Δ vs the reference over {len(seeds)} seeds "
                        f"(mean ± sd); p one-sided paired t-test")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("task", "generator") else "right")
    for row in rows(result):
        table.add_row(*row)
    return table


def markdown(result: RunResult) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(result)]
    return "\n".join(lines) + "\n"
