"""The GitHub workflows (.github/workflows/, docs/ci.md), checked here since no GitHub runner is reachable.

actionlint lints every workflow, with shellcheck on each `run:` block. Then the steps' own scripts run in bash as
a runner would (`bash --noprofile --norc -eo pipefail`), the `${{ }}` expressions of their `env:` replaced by test
values, in a temporary git checkout. Cheap commands run for real (git, `.ci/changed-entries`,
`.ci/check-against-base`, `cxrbench validate`, `cxrbench check`, `pip freeze`); the expensive ones (pip installs,
the test suite, `cxrbench run`, `verify`, `check-generator`) go to recording shims instead, and each recorded
command line is parsed by its own tool's parser (cxrbench's typer app, pip's, mkdocs'), so a renamed option fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent
RECORDED = {  # what the shims record instead of running: (program, first arguments)
    ("python", ("-m", "pip", "install")), ("python", ("-m", "pytest")), ("python", ("-m", "mkdocs")),
    ("cxrbench", ("run",)), ("cxrbench", ("verify",)), ("cxrbench", ("check-generator",)),
}
SHIM = """#!{python}
import json, os, sys
argv = sys.argv[1:]
if any(tuple(argv[:len(head)]) == head for head in {heads!r}):
    with open(os.environ["SHIM_LOG"], "a") as log:
        log.write(json.dumps({{"program": {program!r}, "argv": argv}}) + "\\n")
    sys.exit(0)
os.execv({real!r}, [{real!r}, *argv])
"""
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def the_job(name: str) -> dict:
    (job,) = workflow(name)["jobs"].values()
    return job


def step(name: str, step_name: str) -> dict:
    return next(s for s in the_job(name)["steps"] if s.get("name") == step_name)


def expand(value: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        assert match.group(1) in values, f"no test value for the expression {match.group(0)}"
        return values[match.group(1)]

    return EXPRESSION.sub(one, str(value))


class Runner:
    """Runs a workflow's steps in a checkout, as a GitHub runner's bash would, with the expensive commands shimmed."""

    def __init__(self, tmp: Path, checkout: Path, values: dict[str, str]):
        self.checkout, self.values = checkout, values
        self.log, self.summary = tmp / "shim.log", tmp / "summary.md"
        self.temp = tmp / "runner-temp"
        self.temp.mkdir()
        shims = tmp / "shims"
        shims.mkdir()
        for program, real in (("python", sys.executable), ("cxrbench", str(BIN / "cxrbench"))):
            heads = [head for prog, head in RECORDED if prog == program]
            (shims / program).write_text(SHIM.format(python=sys.executable, heads=heads, program=program, real=real))
            (shims / program).chmod(0o755)
        (shims / "chromium").write_text("#!/bin/sh\nexit 0\n")  # .ci/run installs chromium only when it is missing
        (shims / "chromium").chmod(0o755)
        self.path = f"{shims}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}"

    def run(self, workflow_name: str, step_name: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
        """One step's `run:` script; returns the finished process and the outputs it wrote to $GITHUB_OUTPUT."""
        the_step = step(workflow_name, step_name)
        output = self.temp / "output"
        output.write_text("")
        self.summary.write_text("")  # each step has a summary file of its own
        outside = {k: v for k, v in os.environ.items() if not k.startswith(("CXRBENCH_", "GITHUB_"))}
        env = {**outside, "PATH": self.path, "SHIM_LOG": str(self.log), "RUNNER_TEMP": str(self.temp),
               "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(self.summary), "CI": "true"}
        for key, value in {**the_job(workflow_name).get("env", {}), **the_step.get("env", {})}.items():
            env[key] = expand(value, self.values)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", the_step["run"]],
                              cwd=self.checkout, env=env, capture_output=True, text=True, timeout=300)
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
        return done, outputs

    def recorded(self) -> list[tuple[str, list[str]]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [(entry["program"], entry["argv"]) for entry in map(json.loads, lines)]


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=ci-test", "-c", "user.email=ci-test@example.invalid", "-c", "init.defaultBranch=main"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def parse_click(command, name: str, argv: list[str]) -> dict:
    """The parameters a click/typer command line's own parser reads from argv, walking down its groups; a usage
    error (an unknown command or option, a bad value) fails the test."""
    parent, args = None, list(argv)
    while hasattr(command, "get_command"):  # a group: walk down to the subcommand
        parent = command.context_class(command, info_name=name, parent=parent)
        name, args = args[0], args[1:]
        sub = command.get_command(parent, name)
        assert sub is not None, f"{argv}: no command {name!r}"
        command = sub
    try:
        return command.make_context(name, args, parent=parent).params
    except Exception as error:  # click's UsageError, of whichever click typer runs on
        raise AssertionError(f"{' '.join(argv)}: {error}") from error


def parse_cxrbench(argv: list[str]) -> dict:
    from typer.main import get_command

    from cxrbench.cli import app

    return parse_click(get_command(app), "cxrbench", argv)


def parse_pip_install(argv: list[str]) -> list[str]:
    """The requirements, editable ones first, that pip's own option parser reads from `pip install ARGS` (it exits
    on an unknown option)."""
    from pip._internal.commands import create_command

    options, requirements = create_command("install").parse_args(argv)
    return [*options.editables, *requirements]


def entry_as_run_result(entry: Path) -> dict:
    """A RunResult made from a submission entry's task files: the kind of file `cxrbench run --out` writes."""
    from cxrbench.schemas import RunResult

    files = [json.loads(path.read_text()) for path in sorted(entry.glob("*__*.json"))]
    first = files[0]
    result = {key: first[key] for key in ("protocol_version", "cxrbench_version", "created", "config", "generators")}
    result |= {"tasks": [f["result"] for f in files], "methods": {}, "environment": {}, "wall_seconds": 0.0}
    return json.loads(RunResult.model_validate(result).model_dump_json())


# --- lint ---------------------------------------------------------------------------------------------------------

def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    assert (BIN / "actionlint").exists(), "actionlint is missing: pip install -e '.[test]'"
    assert (BIN / "shellcheck").exists(), "shellcheck is missing: pip install -e '.[test]'"
    return subprocess.run([BIN / "actionlint", "-shellcheck", BIN / "shellcheck", "-no-color", *paths],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["tests.yml", "submissions.yml", "generator-check.yml"])
def test_actionlint_and_shellcheck_pass(name):
    done = actionlint(WORKFLOWS / name)
    assert done.returncode == 0 and not done.stdout, done.stdout + done.stderr


def test_actionlint_runs_shellcheck_on_run_blocks(tmp_path):
    """Without shellcheck actionlint skips the `run:` scripts silently: make sure it finds an unquoted variable."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $FOO\n")
    done = actionlint(bad)
    assert done.returncode == 1 and "SC2086" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("script", ["run", "verify-submissions", "changed-entries", "check-against-base",
                                    "speed-baseline"])
def test_ci_scripts_pass_shellcheck(script):
    done = subprocess.run([BIN / "shellcheck", REPO / ".ci" / script], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("name", ["tests.yml", "submissions.yml", "generator-check.yml"])
def test_run_scripts_take_expressions_through_env_only(name):
    """`${{ }}` inside a `run:` script is pasted into the shell unquoted (script injection from a branch or folder
    name); the workflows pass every value through `env:`."""
    scripts = [s["run"] for s in the_job(name)["steps"] if "run" in s]
    assert scripts and not [s for s in scripts if "${{" in s]


# --- tests.yml ----------------------------------------------------------------------------------------------------

def test_tests_workflow_runs_the_readme_command(tmp_path):
    """`bash .ci/run` runs (ruff for real, the rest recorded) and issues exactly the README's test command."""
    assert step("tests.yml", "Lint, build the docs, run the tests")["run"].strip() == "bash .ci/run"
    assert the_job("tests.yml")["timeout-minutes"] == 90
    readme = re.search(r"^(python -m pip install -e \"\.\[test,docs\]\".*)$", (REPO / "README.md").read_text(), re.M)
    assert readme and (REPO / ".ci" / "run").read_text().rstrip().endswith(readme.group(1))

    runner = Runner(tmp_path, REPO, {})
    done, _ = runner.run("tests.yml", "Lint, build the docs, run the tests")
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = [argv for _, argv in runner.recorded()]
    assert recorded == [["-m", "pip", "install", "-e", ".[test,docs]"], ["-m", "mkdocs", "build", "--strict"],
                        ["-m", "pytest"]]
    assert parse_pip_install(recorded[0][3:]) == [".[test,docs]"]
    from mkdocs.__main__ import cli

    assert parse_click(cli, "mkdocs", recorded[1][2:])["strict"] is True


# --- submissions.yml ----------------------------------------------------------------------------------------------

@pytest.fixture
def pull_request(tmp_path) -> tuple[Path, str]:
    """A clone-like checkout: the base commit holds the oracle entry; the pull request changes its card."""
    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copytree(REPO / ".ci", repo / ".ci")
    shutil.copytree(REPO / "submissions" / "oracle", repo / "submissions" / "oracle")
    base = commit_all(repo, "base")
    card = repo / "submissions" / "oracle" / "generator.yaml"
    card.write_text(card.read_text() + "\n# a reviewer's note\n")
    commit_all(repo, "pull request")
    return repo, base


def test_changed_entries_lists_added_and_changed_entries_only(tmp_path):
    repo = tmp_path / "checkout"
    for path in ("submissions/changed/a.json", "submissions/deleted/a.json", "submissions/README.md"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("base\n")
    git(repo, "init", "-q")
    shutil.copytree(REPO / ".ci", repo / ".ci")
    base = commit_all(repo, "base")
    (repo / "submissions/changed/a.json").write_text("head\n")
    (repo / "submissions/README.md").write_text("head\n")
    shutil.rmtree(repo / "submissions/deleted")
    (repo / "submissions/new entry").mkdir()
    (repo / "submissions/new entry/a.json").write_text("head\n")
    commit_all(repo, "pull request")
    runner = Runner(tmp_path, repo, {"github.event.pull_request.base.sha": base})
    done, _ = runner.run("submissions.yml", "Changed entries")
    assert done.returncode == 0, done.stderr
    assert (runner.temp / "entries").read_text().splitlines() == ["submissions/changed", "submissions/new entry"]


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("argv, expected", [
    ([".ci/changed-entries"], "usage: .ci/changed-entries BASE"),
    ([".ci/changed-entries", "no-such-commit"], ".ci/changed-entries: BASE no-such-commit is no commit of this clone"),
    ([".ci/check-against-base", "HEAD"], "usage: .ci/check-against-base BASE OUT.md [ENTRY...]"),
    ([".ci/check-against-base", "no-such-commit", "out.md"],
     ".ci/check-against-base: BASE no-such-commit is no commit of this clone"),
])
def test_ci_scripts_refuse_bad_arguments_in_one_line(pull_request, argv, expected):
    repo, _ = pull_request
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith(expected) and len(done.stderr.splitlines()) == 1, done
    assert not (repo / "out.md").exists()


def test_submissions_workflow_installs_validates_and_verifies(tmp_path, pull_request):
    repo, base = pull_request
    runner = Runner(tmp_path, repo, {"github.event.pull_request.base.sha": base})
    stdout = {}
    for name in ("Install", "Changed entries", "Validate", "Verify"):
        done, _ = runner.run("submissions.yml", name)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
        stdout[name] = done.stdout
    assert stdout["Changed entries"] == "submissions/oracle\n"
    assert "1 submission(s) valid: oracle" in stdout["Validate"]
    recorded = runner.recorded()
    assert recorded[0] == ("python", ["-m", "pip", "install", "-e", "."]) and parse_pip_install(["-e", "."]) == ["."]
    assert recorded[1] == ("python", ["-m", "pip", "install", "-q", "-e", "."])  # .ci/verify-submissions
    program, verify = recorded[2]
    assert program == "cxrbench" and verify[:2] == ["verify", "submissions/oracle"]
    params = parse_cxrbench(verify)
    assert params["paths"] == [Path("submissions/oracle")] and params["cache_dir"] == Path(".ci-cache")


def test_submissions_workflow_checks_against_the_base_entry(tmp_path, pull_request):
    """`cxrbench check`: the changed entry against its base version, for real; nothing regressed."""
    repo, base = pull_request
    runner = Runner(tmp_path, repo, {"github.event.pull_request.base.sha": base})
    runner.run("submissions.yml", "Changed entries")
    done, outputs = runner.run("submissions.yml", "Check against the base branch")
    report = (runner.temp / "check.md").read_text()
    assert outputs == {"status": "0"}, f"{report}{done.stderr}"
    assert report.startswith("<!-- cxrbench check") and "### submissions/oracle" in report
    assert "|" in report and runner.summary.read_text() == report
    assert git(repo, "worktree", "list").count("\n") == 0  # the base's worktree is gone again

    runner.values["steps.check.outputs.status"] = "1"
    done, _ = runner.run("submissions.yml", "Fail on a regression or bad input")
    assert done.returncode == 1 and "::error::cxrbench check exited 1" in done.stdout


def test_check_against_base_reports_a_new_entry(tmp_path, pull_request):
    repo, base = pull_request
    (repo / "submissions" / "newcomer").mkdir()
    done = subprocess.run([".ci/check-against-base", base, "report.md", "submissions/newcomer"], cwd=repo,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "New entry: the base branch has no version of it" in (repo / "report.md").read_text()


# --- generator-check.yml ------------------------------------------------------------------------------------------

def test_generator_check_has_the_agreed_inputs():
    inputs = workflow("generator-check.yml")["on"]["workflow_call"]["inputs"]
    assert {name: (spec["required"], spec.get("default")) for name, spec in inputs.items()} == {
        "generator": (True, None), "package": (False, "."), "golden": (True, None), "cxrbench-ref": (False, "main")}
    assert the_job("generator-check.yml")["timeout-minutes"] == 15


def test_docs_call_the_reusable_workflow_with_its_inputs():
    """The YAML docs/ci.md gives a generator's repository names this file and only inputs it has."""
    text = (REPO / "docs" / "ci.md").read_text()
    snippet = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "generator-check.yml" in b)
    (job,) = yaml.safe_load(snippet)["jobs"].values()
    assert job["uses"] == "cxrbench/cxrbench/.github/workflows/generator-check.yml@main"
    inputs = workflow("generator-check.yml")["on"]["workflow_call"]["inputs"]
    assert set(job["with"]) <= set(inputs)
    assert {name for name, spec in inputs.items() if spec["required"]} <= set(job["with"])


@pytest.fixture
def caller(tmp_path) -> Path:
    """A generator's repository after both checkouts: its golden file, and cxrbench's sources in .cxrbench."""
    repo = tmp_path / "caller"
    (repo / ".cxrbench").mkdir(parents=True)
    git(repo / ".cxrbench", "init", "-q")
    git(repo / ".cxrbench", "commit", "-q", "--allow-empty", "-m", "cxrbench")
    (repo / "golden.json").write_text(json.dumps(entry_as_run_result(REPO / "submissions" / "oracle")))
    return repo


GENERATOR_INPUTS = {"inputs.generator": "oracle", "inputs.package": ".", "inputs.golden": "golden.json",
                    "inputs.cxrbench-ref": "main"}


def test_generator_check_installs_and_keys_its_cache(tmp_path, caller):
    runner = Runner(tmp_path, caller, GENERATOR_INPUTS)
    done, _ = runner.run("generator-check.yml", "Install cxrbench and the generator's package")
    assert done.returncode == 0, done.stderr
    assert runner.recorded() == [("python", ["-m", "pip", "install", "./.cxrbench", "."])]
    assert parse_pip_install(["./.cxrbench", "."]) == ["./.cxrbench", "."]
    done, outputs = runner.run("generator-check.yml", "Cache key")
    assert done.returncode == 0, done.stderr
    assert outputs["cxrbench"] == git(caller / ".cxrbench", "rev-parse", "HEAD")
    assert re.fullmatch(r"[0-9a-f]{16}", outputs["packages"])


def test_generator_check_commands_parse(tmp_path, caller):
    """`cxrbench check-generator` and `cxrbench run --profile`: the conformance and smoke-run steps'
    exact command lines, parsed by cxrbench's own CLI."""
    runner = Runner(tmp_path, caller, GENERATOR_INPUTS)
    for name in ("Conformance", "Smoke run"):
        done, _ = runner.run("generator-check.yml", name)
        assert done.returncode == 0, done.stderr
    conformance, smoke = (argv for _, argv in runner.recorded())
    assert conformance == ["check-generator", "oracle"] and parse_cxrbench(conformance)
    assert smoke == ["run", "--profile", "smoke", "--generator", "oracle", "--out", "new.json"]
    params = parse_cxrbench(smoke)
    assert params["generator"] == "oracle" and params["out"] == Path("new.json")


def test_generator_check_compares_with_the_golden(tmp_path, caller):
    """`cxrbench check`: the new result against the golden, for real (here the same numbers: exit 0,
    the markdown table in the job summary); a missing golden is bad input, exit 2, and fails the step."""
    runner = Runner(tmp_path, caller, GENERATOR_INPUTS)
    shutil.copy(caller / "golden.json", caller / "new.json")
    done, _ = runner.run("generator-check.yml", "Compare with the golden result")
    assert done.returncode == 0, f"{done.stdout}{done.stderr}"
    assert "|" in runner.summary.read_text()
    runner.values["inputs.golden"] = "no-such-golden.json"
    done, _ = runner.run("generator-check.yml", "Compare with the golden result")
    assert done.returncode == 2 and "no-such-golden.json" in runner.summary.read_text()


# --- .ci/speed-baseline -------------------------------------------------------------------------------------------

@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("argv, expected", [
    ([], "usage: .ci/speed-baseline save|compare [PATH...]"),
    (["keep"], "usage: .ci/speed-baseline save|compare [PATH...]"),
    (["compare"], ".ci/speed-baseline: no baseline of this machine in .benchmarks/"),
])
def test_speed_baseline_refuses_in_one_line(tmp_path, argv, expected):
    """A copy of the script in a folder without .benchmarks/: nothing is timed here."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "speed-baseline", tmp_path / ".ci")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([tmp_path / ".ci" / "speed-baseline", *argv], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and done.stderr.startswith(expected) and len(done.stderr.splitlines()) == 1, done
