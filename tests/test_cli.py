"""The CLI: listing, reporting, and one-line errors with a non-zero exit for bad input."""

import json

import pytest
from typer.testing import CliRunner

from cxrbench.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, list(args))


def test_list_shows_tasks_and_generators():
    result = _invoke("list")
    assert result.exit_code == 0
    for name in ("phantom_cls", "phantom_seg", "real_only", "classic_aug", "oracle", "noise"):
        assert name in result.output


@pytest.mark.parametrize("args, message", [
    (["--generator", "dalle"], "unknown generator 'dalle'"),
    (["--generator", "oracle", "--task", "mnist"], "unknown task 'mnist'"),
    (["--generator", "oracle", "--suite", "nope"], "unknown suite 'nope'"),
    (["--generator", "oracle", "--ratios", "-1"], "ratios must be positive"),
    (["--generator", "oracle", "--ratios", "inf"], "ratios must be positive finite numbers"),
    (["--generator", "oracle", "--ratios", "1e309"], "ratios must be positive finite numbers"),
    (["--generator", "oracle", "--seeds", "100000000"], "invalid setting seeds: Input should be less than or equal"),
    (["--generator", "[/x]"], "unknown generator '[/x]'"),
    (["--generator", "[nan]"], "unknown generator '[nan]'"),
    (["--generator", "oracle", "--device", "bogus"], "invalid setting device: String should match pattern"),
    (["--generator", "oracle", "--ratios", "one"], "comma-separated numbers"),
    (["--generator", "oracle", "--seeds", "1"], "invalid setting seeds: Input should be greater than or equal to 2"),
    (["--generator", "oracle", "--regimes", "huge"], "task phantom_cls has no regime 'huge'"),
    (["--generator", "oracle", "--regimes", "full", "--train-size", "30"], "regimes or a train size, not both"),
])
def test_bad_run_settings_fail_in_one_line(args, message, tmp_path):
    result = _invoke("run", *args, "--cache-dir", str(tmp_path))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_unwritable_cache_directory_fails_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _invoke("run", "--generator", "oracle", "--cache-dir", str(blocker / "cache"))
    assert result.exit_code == 2 and f"--cache-dir {blocker / 'cache'}: cannot write there (Not a directory)" in \
        result.output and "Traceback" not in result.output


def test_report_rejects_files_that_are_not_results(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": "2"}))
    rejected = _invoke("report", str(bad))
    assert rejected.exit_code == 2 and f"{bad} is not a cxrbench result: field protocol_version" in rejected.output
    bad.write_text(json.dumps({"schema_version": "1"}))
    old = _invoke("report", str(bad))
    assert old.exit_code == 2 and "is a result of schema 1 (this cxrbench reads schema 2, protocol 2)" in old.output
    missing = _invoke("report", str(tmp_path / "missing.json"))
    assert missing.exit_code == 2 and f"cannot read {tmp_path / 'missing.json'}" in missing.output


def test_report_prints_markdown_json_and_table(tiny_run, tmp_path):
    _, _, result = tiny_run
    path = tmp_path / "result.json"
    path.write_text(result.model_dump_json())
    markdown = _invoke("report", str(path), "--format", "markdown")
    assert markdown.exit_code == 0
    assert markdown.output.startswith("| task | regime |") and markdown.output.count("| oracle |") == 2
    assert "Incomplete: `oracle` lacks phantom_cls/full ratio 1 vs real_only" in markdown.output
    as_json = json.loads(_invoke("report", str(path), "--format", "json").output)
    assert as_json["schema_version"] == "2"


def test_the_terminal_report_fits_80_columns_with_the_verdict_up_front(tiny_run):
    """Secondary numbers live in markdown/json: in 80 columns nothing wraps into fragments."""
    from rich.console import Console

    from cxrbench.report import rich_report

    _, _, result = tiny_run
    console = Console(width=80, record=True)
    console.print(rich_report(result))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    rows = [line for line in lines if line.startswith(("oracle", "noise"))]
    assert len(rows) == 4 and max(map(len, lines)) <= 80
    header = next(line for line in lines if line.startswith("arm"))
    assert header.split() == ["arm", "vs", "Δ", "95%", "CI", "p", "Holm", "verdict"]
    for row in rows:
        assert row.split()[-1] in ("helps", "hurts") or "n.d. (MDE" in row
    assert "phantom_seg · n24 (24 real) · dice" in "\n".join(lines)


def test_a_generator_that_serves_no_task_of_the_run_is_an_error(tmp_path):
    result = runner.invoke(app, ["run", "--generator", "ldm_mask", "--task", "phantom_cls", "--cache-dir",
                                 str(tmp_path)])
    assert result.exit_code == 2
    assert "ldm_mask cannot take label conditions" in result.output and "Traceback" not in result.output


def test_a_suite_run_skips_the_tasks_a_generator_cannot_serve():
    from cxrbench.plan import checked_config
    from cxrbench.schemas import RunConfig

    config = checked_config(RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["ldm_mask"]))
    assert config.tasks == ["phantom_seg"]
    both = checked_config(RunConfig(tasks=["phantom_cls", "phantom_seg"], generators=["ldm_mask", "ldm_text"]))
    assert both.tasks == ["phantom_cls", "phantom_seg"]


@pytest.mark.parametrize("content, message", [
    ("ldm_mask: [1, 2]", "must map generator names to option mappings"),
    ("ldm_mask: {preset: tiny", "cannot read generator config"),
    ("noise: {}", "not in the run: noise"),
])
def test_bad_generator_config_files_fail_in_one_line(content, message, tmp_path):
    config = tmp_path / "generators.yaml"
    config.write_text(content)
    result = runner.invoke(app, ["run", "--generator", "ldm_mask", "--generator-config", str(config),
                                 "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_gpu_this_machine_lacks_fails_before_any_work(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = _invoke("run", "--generator", "oracle", "--device", "cuda", "--cache-dir", str(tmp_path))
    assert result.exit_code == 2 and "--device cuda: this machine has no such device" in result.output
    assert not list(tmp_path.glob("downstream/*"))


@pytest.mark.parametrize("out, message", [("folder", "is a folder; name the result file"),
                                          ("/proc/cxrbench/result.json", "cannot write there")])
def test_an_unwritable_out_fails_before_any_work(tmp_path, out, message):
    (tmp_path / "folder").mkdir()
    target = out if out.startswith("/") else str(tmp_path / out)
    result = _invoke("run", "--generator", "oracle", "--out", target, "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not list((tmp_path / "cache").glob("downstream/*"))


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path):
    from cxrbench.cache import write_atomic

    (tmp_path / "result.json").mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError):
        write_atomic(tmp_path / "result.json", b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
