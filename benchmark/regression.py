"""`cxrbench check NEW BASELINE`: did a generator's synthetic data become less useful than a baseline result says?

NEW and BASELINE are each a RunResult JSON (`cxrbench run`, e.g. a golden smoke result) or a submission entry (its
folder or one task file). They are compared comparison by comparison, keyed by (task, regime, ratio, reference).

The regression rule is statistical, never a fixed epsilon. For each comparison present on both sides:

- diff = Δnew − Δbase, with se = sqrt(se_seeds,new² + se_patients,new² + se_seeds,base² + se_patients,base²): each
  side's primary standard error (protocol 2: training seeds and test patients combined), the two taken as
  independent. Both sides are scored on the same test patients, whose errors move both Δs the same way, so the
  true variance of the difference is smaller: the rule is conservative (it errs towards passing), never liberal;
- df by Welch-Satterthwaite from the two sides' variances and their own (Satterthwaite) df;
- `--direction worse` (a generator's CI): one-sided p = P(T_df ≤ diff / se); `--direction any` (this project's CI,
  where a code change must not move the numbers either way): two-sided p;
- Holm over the check's comparable comparisons at α = 0.05 (`stats.correct`);
- a comparison regressed when its Holm p < α, or when its verdict flipped from *helps* to *no detectable
  difference* or *hurts* (`--direction any`: when its verdict changed at all).

A comparison missing from either side, or computed under another protocol version, profile (or smoke profile
version) or task version, is not comparable: it fails the check unless `--allow-missing`. The check passes (exit 0)
when no comparison regressed or failed; it fails (exit 1) otherwise, and when nothing could be compared at all.
Whether the two Δs are bit-identical is reported beside (informative: with the pinned CPU kernels the same cells
give the same bits, so an unchanged run on the same seeds is identical).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError
from scipy import stats as scipy_stats

from .conditions import PROTOCOL_POLICY
from .errors import DataError
from .protocol import ALPHA, RESULT_SCHEMA_VERSION, FamilyMember
from .schemas import ComparisonResult, RunResult, TaskResult, Verdict
from .stats import correct

Direction = Literal["worse", "any"]
Status = Literal["ok", "regressed", "changed", "missing", "not comparable"]
MAX_RESULT_BYTES = 64_000_000
"""A RunResult of a whole suite with every generator is a few MB; a file of gigabytes is not one."""


@dataclass(frozen=True)
class Stamp:
    """What must match for two Δs to measure the same thing."""

    protocol: str
    profile: str
    task_version: str
    conditions: str
    """The condition policy (ConditionPolicy.describe): an exploratory policy's Δ is not the protocol's."""

    def differences(self, other: Stamp) -> list[str]:
        return [f"{name} {mine} vs {theirs}" for name, mine, theirs in
                (("protocol", self.protocol, other.protocol), ("profile", self.profile, other.profile),
                 ("task version", self.task_version, other.task_version),
                 ("conditions", self.conditions, other.conditions)) if mine != theirs]


@dataclass(frozen=True)
class Measured:
    generator: str
    member: FamilyMember
    comparison: ComparisonResult
    stamp: Stamp


@dataclass(frozen=True)
class Loaded:
    """The comparisons a file (or an entry's task files) holds."""

    source: str
    measured: list[Measured]

    def generators(self) -> list[str]:
        return sorted({m.generator for m in self.measured})

    def of(self, generator: str | None, option: str) -> tuple[str, dict[FamilyMember, Measured]]:
        """The comparisons of `generator` (default: the only one the file holds), by member."""
        names = self.generators()
        if generator is None:
            if len(names) != 1:
                raise DataError(f"{self.source} holds the comparisons of {len(names)} generators "
                                f"({', '.join(names) or 'none'}): pick one with {option}")
            generator = names[0]
        elif generator not in names:
            raise DataError(f"{option} {generator}: {self.source} holds no comparison of it (it holds "
                            f"{', '.join(names) or 'none'})")
        return generator, {m.member: m for m in self.measured if m.generator == generator}


class CheckRow(BaseModel):
    task: str
    regime: str
    ratio: float
    reference: str
    delta_baseline: float | None
    delta_new: float | None
    diff: float | None = None
    se: float | None = None
    df: float | None = None
    p: float | None = None
    p_holm: float | None = None
    verdict_baseline: Verdict | None
    verdict_new: Verdict | None
    identical: bool | None = None
    """Whether the two Δs are the same float, bit for bit (None: not both present)."""
    status: Status
    note: str = ""
    fails: bool = False


class CheckReport(BaseModel):
    new: str
    baseline: str
    generator: str
    baseline_generator: str
    direction: Direction
    alpha: float
    allow_missing: bool
    rows: list[CheckRow]
    passed: bool
    summary: str


def load(path: Path) -> Loaded:
    """A RunResult JSON, a submission task file, or a submission entry's folder; DataError naming the path if not."""
    from .submission import task_files

    if path.is_dir():
        files = task_files(path)
        if not files:
            raise DataError(f"{path} is a folder without task files (<suite>__<task>__<regime>.json): expected a "
                            f"submission entry's folder, a task file or a RunResult JSON")
        return Loaded(str(path), [m for file in files for m in _task_file(file)])
    data = _json(path)
    if "tasks" in data:
        return Loaded(str(path), _run_result(path, data))
    return Loaded(str(path), _task_file(path))


def _json(path: Path) -> dict:
    from .untrusted import load_json, read_bounded

    try:
        data = load_json(read_bounded(path, MAX_RESULT_BYTES))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or folder") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # not JSON (json.JSONDecodeError, UnicodeDecodeError) or not a regular file
        raise DataError(f"{path} is not a cxrbench result or task file: {' '.join(str(error).split())[:200]}") \
            from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a cxrbench result or task file: expected a JSON object")
    return data


def _run_result(path: Path, data: dict) -> list[Measured]:
    version = data.get("schema_version")
    if version != RESULT_SCHEMA_VERSION:
        raise DataError(f"{path} is a result of schema {version!r} (this cxrbench reads schema "
                        f"{RESULT_SCHEMA_VERSION!r}): rerun it with this cxrbench")
    try:
        result = RunResult.model_validate(data)
    except ValidationError as error:
        raise DataError(f"{path} is not a cxrbench result: {_first_problem(error)}") from None
    profile = result.config.profile if result.smoke_profile_version is None else \
        f"{result.config.profile} {result.smoke_profile_version}"
    conditions = result.config.condition_policy.describe()
    return [m for task in result.tasks for m in _measured(task, result.protocol_version, profile, conditions)]


def _task_file(path: Path) -> list[Measured]:
    from .submission import load_task_submission

    try:
        entry = load_task_submission(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or folder") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    except ValidationError as error:
        raise DataError(f"{path} is not a cxrbench result or task file: {_first_problem(error)}") from None
    except ValueError as error:
        raise DataError(f"{path} is not a cxrbench task file: {' '.join(str(error).split())[:200]}") from None
    return _measured(entry.result, entry.protocol_version, entry.config.profile, PROTOCOL_POLICY.describe())


def _first_problem(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    return f"field {'.'.join(map(str, first['loc'])) or '(top level)'}: {first['msg']}"


def _measured(task: TaskResult, protocol: str, profile: str, conditions: str) -> list[Measured]:
    stamp = Stamp(protocol, profile, task.task.version, conditions)
    return [Measured(c.generator, FamilyMember(task.task.name, task.regime, c.ratio, c.reference), c, stamp)
            for c in task.comparisons]


@dataclass(frozen=True)
class Difference:
    diff: float
    se: float
    df: float
    p: float


def difference(new: ComparisonResult, base: ComparisonResult, direction: Direction) -> Difference:
    """Δnew − Δbase, its standard error and Welch-Satterthwaite df (the sides independent), and its p: one-sided
    (H1: new < base) for `worse`, two-sided for `any`. With no variance at all, p is 0 when the Δs differ in the
    tested direction and 1 otherwise (as `stats.combined_interval` treats a degenerate test)."""
    diff = new.delta - base.delta
    variances = [(side.se_seeds**2 + side.se_patients**2, side.df) for side in (new, base)]
    variance = sum(v for v, _ in variances)
    if variance == 0:
        moved = diff < 0 if direction == "worse" else diff != 0
        return Difference(diff, 0.0, math.inf, 0.0 if moved else 1.0)
    se = math.sqrt(variance)
    df = variance**2 / sum(v**2 / k for v, k in variances if v > 0)
    t = diff / se
    p = scipy_stats.t.cdf(t, df) if direction == "worse" else 2 * scipy_stats.t.sf(abs(t), df)
    return Difference(diff, se, df, float(min(1.0, p)))


def check(new: Loaded, baseline: Loaded, *, generator: str | None = None, baseline_generator: str | None = None,
          direction: Direction = "worse", allow_missing: bool = False, alpha: float = ALPHA) -> CheckReport:
    """Compare `new`'s comparisons of `generator` with `baseline`'s of `baseline_generator` (default: the same
    generator, or the only one the baseline holds); see the module's docstring for the rule."""
    generator, news = new.of(generator, "--generator")
    if baseline_generator is None and generator in baseline.generators():
        baseline_generator = generator
    baseline_generator, bases = baseline.of(baseline_generator, "--baseline-generator")
    members = sorted(set(news) | set(bases))
    paired = {m: (news[m], bases[m]) for m in members
              if m in news and m in bases and not news[m].stamp.differences(bases[m].stamp)}
    tested = {m: difference(n.comparison, b.comparison, direction) for m, (n, b) in paired.items()}
    holm = dict(zip(tested, correct([d.p for d in tested.values()], "holm"), strict=True))
    rows = [_row(m, news.get(m), bases.get(m), tested.get(m), holm.get(m), direction, allow_missing, alpha)
            for m in members]
    failed = [row for row in rows if row.fails]
    passed = bool(tested) and not failed
    return CheckReport(new=new.source, baseline=baseline.source, generator=generator,
                       baseline_generator=baseline_generator, direction=direction, alpha=alpha,
                       allow_missing=allow_missing, rows=rows, passed=passed,
                       summary=_summary(rows, tested, passed))


def _row(member: FamilyMember, new: Measured | None, base: Measured | None, tested: Difference | None,
         p_holm: float | None, direction: Direction, allow_missing: bool, alpha: float) -> CheckRow:
    n, b = (None if side is None else side.comparison for side in (new, base))
    row = dict(task=member.task, regime=member.regime, ratio=member.ratio, reference=member.reference,
               delta_baseline=None if b is None else b.delta, delta_new=None if n is None else n.delta,
               verdict_baseline=None if b is None else b.verdict, verdict_new=None if n is None else n.verdict)
    if n is None or b is None:
        return CheckRow(**row, status="missing", note="missing in " + ("new" if n is None else "baseline"),
                        fails=not allow_missing)
    row["identical"] = n.delta == b.delta
    if tested is None:
        return CheckRow(**row, status="not comparable", note="; ".join(new.stamp.differences(base.stamp)),
                        fails=not allow_missing)
    row.update(diff=tested.diff, se=tested.se, df=tested.df, p=tested.p, p_holm=p_holm)
    flipped = (n.verdict != b.verdict) if direction == "any" else (b.verdict == "helps" and n.verdict != "helps")
    moved = p_holm < alpha
    if not (moved or flipped):
        return CheckRow(**row, status="ok")
    notes = [f"Holm p {p_holm:.2g} < {alpha:g}"] if moved else []
    notes += [f"verdict {b.verdict} → {n.verdict}"] if flipped else []
    return CheckRow(**row, status="regressed" if direction == "worse" else "changed", note="; ".join(notes),
                    fails=True)


def _summary(rows: list[CheckRow], tested: dict, passed: bool) -> str:
    counts = {status: sum(row.status == status for row in rows) for status in
              ("ok", "regressed", "changed", "missing", "not comparable")}
    shown = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    if not tested:
        return f"FAILED: nothing could be compared ({shown or 'no comparisons'})"
    return f"{'passed' if passed else 'FAILED'}: {shown}"
