"""Bad input ends in one line that names what was wrong, exit code 2, and no work done (issue 16, items 7-9).

Every case runs the CLI in-process (typer's CliRunner) with the work itself replaced by a tripwire, so a
case that got past the checks fails at once instead of training. Names print verbatim (`[/x]` is not rich
markup). The generator options' property test mutates valid configs and asks for a clean refusal or a
config that is still valid.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cxrbench.agreement
import cxrbench.calibration
import cxrbench.quality
import cxrbench.review
import cxrbench.runner
from cxrbench.cache import content_key
from cxrbench.cli import app
from cxrbench.errors import ConfigError
from cxrbench.registry import generator_class

runner = CliRunner()
NOT_UTF8 = os.fsdecode(b"data-\xff")
"""A folder name the file system takes but UTF-8 text (and so the result JSON) cannot hold."""
CACHE = ["--cache-dir", "{tmp}/cache"]
ORACLE_TASK_FILE = Path(__file__).resolve().parents[1] / "submissions" / "oracle" / "embedded__phantom_cls__scarce.json"
PHANTOM = ["--task", "phantom_cls", *CACHE]


@pytest.fixture
def tripwire(monkeypatch, tmp_path):
    """Any work (cells, fits, synthetic sets, calibration trainings, quality models, the review page) fails the case
    at once; the command runs in `tmp_path`, so default outputs (results/) land there."""
    def work(*args, **kwargs):
        raise AssertionError("the command started work on bad input")

    for module, name in [(cxrbench.runner, "execute"), (cxrbench.runner, "_arms_to_fit"),
                         (cxrbench.agreement, "synthetic_set"), (cxrbench.review, "synthetic_set"),
                         (cxrbench.review, "open_review_page"), (cxrbench.calibration, "_train"),
                         (cxrbench.quality, "task_spaces")]:
        monkeypatch.setattr(module, name, work)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CXRBENCH_DATA_ROOT", raising=False)
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty-root").mkdir()
    (tmp_path / NOT_UTF8).mkdir()
    return tmp_path


def _refused_in_one_line(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    assert expected in lines[0], lines[0]


def _case(name: str, args: list[str], expected: str, files: dict[str, str | bytes] | None = None):
    return pytest.param(args, expected, files or {}, id=name)


def _config(name: str, generator: str, text: str | bytes, expected: str, task: str = "phantom_cls"):
    """`cxrbench run` of `generator` on `task` with a generator config file holding `text`."""
    return _case(name, ["run", "-g", generator, "--generator-config", "{tmp}/generators.yaml", "--task", task, *CACHE],
                 expected, {"generators.yaml": text})


CASES = [
    # --ratios
    _case("ratios_inf", ["run", "-g", "oracle", "--ratios", "inf", *PHANTOM], "ratios must be positive finite numbers"),
    _case("ratios_overflow", ["run", "-g", "oracle", "--ratios", "1e309", *PHANTOM],
          "ratios must be positive finite numbers below 1000 (synthetic per real image), got [inf]"),
    _case("ratios_nan", ["run", "-g", "oracle", "--ratios", "nan", *PHANTOM], "got [nan]"),
    _case("ratios_zero", ["run", "-g", "oracle", "--ratios", "0", *PHANTOM], "got [0.0]"),
    _case("ratios_negative", ["run", "-g", "oracle", "--ratios", "0.5,-1", *PHANTOM], "got [0.5, -1.0]"),
    _case("ratios_words", ["run", "-g", "oracle", "--ratios", "one", *PHANTOM],
          "--ratios must be comma-separated numbers, got 'one'"),
    # --seeds
    _case("seeds_huge", ["run", "-g", "oracle", "--seeds", "100000000", *PHANTOM],
          "invalid setting seeds: Input should be less than or equal to 1000"),
    _case("seeds_23_digits", ["run", "-g", "oracle", "--seeds", "12345678901234567890123", *PHANTOM],
          "invalid setting seeds: Input should be less than or equal to 1000"),
    _case("seeds_one", ["run", "-g", "oracle", "--seeds", "1", *PHANTOM],
          "invalid setting seeds: Input should be greater than or equal to 2"),
    _case("seeds_not_a_number", ["run", "-g", "oracle", "--seeds", "abc", *PHANTOM],
          "run: Invalid value for '--seeds'"),
    # --device, --n-boot, --format, unknown options and commands
    _case("device_bogus", ["run", "-g", "oracle", "--device", "bogus", *PHANTOM],
          "invalid setting device: String should match pattern"),
    _case("n_boot_too_small", ["run", "-g", "oracle", "--n-boot", "5", *PHANTOM],
          "invalid setting n_boot: Input should be greater than or equal to 100"),
    _case("format_unknown", ["run", "-g", "oracle", "--format", "xml", *PHANTOM], "Invalid value for '--format'"),
    _case("option_unknown", ["run", "-g", "oracle", "--bogus"], "No such option: --bogus"),
    _case("command_unknown", ["bogus"], "No such command 'bogus'"),
    # --out and --cache-dir
    _case("out_a_folder", ["run", "-g", "oracle", "--out", "{tmp}/folder", *PHANTOM],
          "--out {tmp}/folder is a folder; name the result file, e.g. {tmp}/folder/result.json"),
    _case("out_read_only", ["run", "-g", "oracle", "--out", "/sys/kernel/cxrbench.json", *PHANTOM],
          "--out /sys/kernel/cxrbench.json: cannot write there"),
    _case("cache_read_only", ["run", "-g", "oracle", "--task", "phantom_cls", "--cache-dir", "/sys/kernel/cxrbench"],
          "--cache-dir /sys/kernel/cxrbench: cannot write there"),
    _case("cache_under_a_file", ["run", "-g", "oracle", "--task", "phantom_cls", "--cache-dir",
                                 "{tmp}/generators.yaml/cache"],
          "--cache-dir {tmp}/generators.yaml/cache: cannot write there (Not a directory)", {"generators.yaml": ""}),
    _case("ray_address_without_ray", ["run", "-g", "oracle", "--ray-address", "auto", *PHANTOM],
          "--ray-address needs --executor ray"),
    _case("ray_cluster_relative_cache", ["run", "-g", "oracle", "--task", "phantom_cls", "--executor", "ray",
                                         "--ray-address", "auto", "--cache-dir", "cache"],
          "--cache-dir cache is a relative path: on a Ray cluster every node must see the cache"),
    # names, printed verbatim
    _case("markup_closing_tag", ["run", "-g", "[/x]", *PHANTOM], "unknown generator '[/x]'"),
    _case("markup_nan", ["run", "-g", "[nan]", *PHANTOM], "unknown generator '[nan]'"),
    _case("task_unknown", ["run", "-g", "oracle", "--task", "mnist", *CACHE], "unknown task 'mnist'"),
    _case("generator_unknown", ["run", "-g", "dalle", *PHANTOM], "unknown generator 'dalle'; known generators:"),
    _case("plan_generator_unknown", ["plan", "-g", "dalle", *PHANTOM], "unknown generator 'dalle'; known generators:"),
    _case("plan_seeds_one", ["plan", "-g", "oracle", "--seeds", "1", *PHANTOM],
          "invalid setting seeds: Input should be greater than or equal to 2"),
    _case("feature_extractor_unknown", ["run", "-g", "oracle", "--feature-extractor", "clip", *PHANTOM],
          "feature extractor 'clip': expected 'in_domain', 'xrv:"),
    _case("feature_extractor_missing_file", ["run", "-g", "oracle", "--feature-extractor", "xrv:{tmp}/none.pt",
                                             *PHANTOM], "xrv DenseNet weights {tmp}/none.pt: no such file"),
    _case("suite_unknown", ["run", "-g", "oracle", "--suite", "nope", *CACHE], "unknown suite 'nope'"),
    _case("regime_unknown", ["run", "-g", "oracle", "--regimes", "huge", *PHANTOM],
          "task phantom_cls has no regime 'huge' (its regimes: scarce, full)"),
    _case("task_empty", ["run", "-g", "oracle", "--task", "", *CACHE],
          "--task '' names nothing; leave --task out for its default"),
    _case("regimes_empty", ["run", "-g", "oracle", "--regimes", ",", *PHANTOM], "--regimes ',' names nothing"),
    _case("generator_empty", ["run", "-g", " ", *PHANTOM], "--generator ' ' names nothing"),
    _case("generator_twice", ["run", "-g", "oracle,noise,oracle", *PHANTOM],
          "the run names generator oracle more than once"),
    # training sizes
    _case("train_size_beyond_the_split", ["run", "-g", "oracle", "--train-size", "1000000", *PHANTOM],
          "task phantom_cls's training split holds 1,462 images, fewer than the 1,000,000 that regime n1000000 "
          "asks for"),
    _case("train_size_zero", ["run", "-g", "oracle", "--train-size", "0", *PHANTOM],
          "invalid setting train_size: Input should be greater than 0"),
    _case("train_size_negative", ["run", "-g", "oracle", "--train-size", "-3", *PHANTOM],
          "invalid setting train_size: Input should be greater than 0"),
    _case("train_size_one", ["run", "-g", "oracle", "--train-size", "1", *PHANTOM],
          "--train-size must be at least 2 images"),
    _case("train_size_with_regimes", ["run", "-g", "oracle", "--regimes", "full", "--train-size", "30", *PHANTOM],
          "give regimes or a train size, not both"),
    # data roots
    _case("data_root_missing", ["run", "-g", "oracle", "--data-root", "{tmp}/nowhere", *PHANTOM],
          "--data-root {tmp}/nowhere is not a folder"),
    _case("data_root_not_utf8", ["run", "-g", "oracle", "--data-root", f"{{tmp}}/{NOT_UTF8}", *PHANTOM],
          "invalid setting data_root: the path {tmp}/data-\\xff is not UTF-8 text, which the result JSON needs"),
    _case("data_root_without_the_dataset", ["run", "-g", "noise", "--task", "pneumonia_cls", "--data-root",
                                            "{tmp}/empty-root", *CACHE],
          "task pneumonia_cls: no folder {tmp}/empty-root/pneumonia-kermany"),
    _case("data_root_not_given", ["run", "-g", "noise", "--task", "pneumonia_cls", *CACHE],
          "task pneumonia_cls reads real data: pass --data-root DIR"),
    # generators that cannot serve the run
    _case("generator_serves_no_task", ["run", "-g", "ldm_mask", *PHANTOM],
          "generator ldm_mask cannot take label conditions, which task phantom_cls asks for"),
    _case("generator_serves_no_suite", ["run", "-g", "oracle", "--suite", "open", *CACHE],
          "generator oracle serves suites ['embedded'], not 'open'"),
    # the generator config file
    _config("config_binary", "noise", b"noise: \xff\xfe\x00\x01",
            "cannot read generator config {tmp}/generators.yaml: not UTF-8 text (byte 0xff at offset 7)"),
    _case("config_endless", ["run", "-g", "noise", "--generator-config", "/dev/zero", *PHANTOM],
          "cannot read generator config /dev/zero: larger than 1,000,000 bytes"),
    _case("config_missing", ["run", "-g", "noise", "--generator-config", "{tmp}/missing.yaml", *PHANTOM],
          "cannot read generator config {tmp}/missing.yaml: No such file or directory"),
    _case("config_a_folder", ["run", "-g", "noise", "--generator-config", "{tmp}/folder", *PHANTOM],
          "cannot read generator config {tmp}/folder: Is a directory"),
    _config("config_bad_yaml", "ldm_text", "ldm_text: {preset: tiny",
            "cannot read generator config {tmp}/generators.yaml: not valid YAML (while parsing a flow mapping"),
    _config("config_not_a_mapping", "ldm_text", "ldm_text: [1, 2]",
            "generator config {tmp}/generators.yaml must map generator names to option mappings"),
    _config("config_for_a_generator_not_run", "ldm_text", "noise: {}",
            "generator config names generators that are not in the run: noise"),
    # generator options
    _config("option_misspelt", "ldm_text", "ldm_text: {denoiser: {stpes: 2}}",
            "generator option ldm_text.denoiser.stpes is unknown; ldm_text.denoiser takes attention_head_dim, "
            "batch_size,"),
    _config("option_negative_steps", "ldm_text", "ldm_text: {denoiser: {steps: -5}}",
            "generator option ldm_text.denoiser.steps: Input should be greater than or equal to 1, got -5"),
    _config("option_no_sampler_steps", "ldm_text", "ldm_text: {sampler: {steps: 0}}",
            "generator option ldm_text.sampler.steps: Input should be greater than or equal to 1, got 0"),
    _config("option_infinite_learning_rate", "ldm_text", "ldm_text: {denoiser: {learning_rate: .inf}}",
            "generator option ldm_text.denoiser.learning_rate: Input should be a finite number, got inf"),
    _config("option_probability_above_one", "ldm_text", "ldm_text: {denoiser: {condition_dropout: 7}}",
            "generator option ldm_text.denoiser.condition_dropout: Input should be less than or equal to 1, got 7"),
    _config("option_date", "ldm_text", "ldm_text: {preset: 2024-01-01}",
            "generator option ldm_text.preset: Input should be 'tiny', 'cpu' or 'paper', got "
            "datetime.date(2024, 1, 1)"),
    _config("option_null", "ldm_text", "ldm_text: {denoiser: {steps: null}}",
            "generator option ldm_text.denoiser.steps: Input should be a valid integer, got None"),
    _config("option_section_not_a_mapping", "ldm_text", "ldm_text: {denoiser: 5}",
            "generator option ldm_text.denoiser: expected a mapping of options, got 5"),
    _config("option_for_a_generator_without_options", "noise", "noise: {when: 2024-01-01}",
            "generator option noise.when is unknown; noise takes no options"),
    _case("option_required_missing", ["run", "-g", "pretrained_pipeline", *PHANTOM],
          "generator option pretrained_pipeline.path is missing: a local folder written by a diffusers pipeline's "
          "save_pretrained"),
    _config("option_refine_threshold", "ldm_text_proxy", "ldm_text_proxy: {refine: {threshold: 1.5}}",
            "generator option ldm_text_proxy.refine.threshold: Input should be less than or equal to 1, got 1.5"),
    _config("option_reviewed_rounds", "ldm_mask_reviewed",
            "ldm_mask_reviewed: {feedback: reviews.jsonl, refine: {rounds: 2}}",
            "generator option ldm_mask_reviewed.refine: reviewers judged the plain model's images once, so rounds is "
            "at most 1, got {{'rounds': 2}}", task="phantom_seg"),
    # agreement and review
    _case("review_unservable", ["review", "-g", "ldm_mask", *PHANTOM],
          "generator ldm_mask cannot take label conditions, which task phantom_cls asks for"),
    _case("agreement_unservable", ["agreement", "-g", "ldm_mask", *PHANTOM],
          "generator ldm_mask cannot take label conditions, which task phantom_cls asks for"),
    _case("agreement_of_the_baseline", ["agreement", "-g", "real_only", *PHANTOM],
          "generator real_only makes no synthetic images: it is the baseline"),
    _case("agreement_seed_outside_the_plan", ["agreement", "-g", "oracle", "--seed", "99", *PHANTOM],
          "seed 99: task phantom_cls's synthetic sets have seeds 0 to 4"),
    _case("agreement_out_a_folder", ["agreement", "-g", "oracle", "--out", "{tmp}/folder", *PHANTOM],
          "--out {tmp}/folder is a folder"),
    _case("review_empty_regime", ["review", "-g", "oracle", "--regime", "", *PHANTOM], "--regime '' names nothing"),
    # calibrate
    _case("calibrate_real_task", ["calibrate", "--task", "pneumonia_cls", "--workers", "1", *CACHE],
          "task pneumonia_cls is not simulated: only the embedded suite can measure true effects"),
    _case("calibrate_group_of_none", ["calibrate", "--group-size", "0", "--workers", "1", *PHANTOM],
          "--group-size 0: a group needs at least 2 seeds for its interval"),
    _case("calibrate_too_few_seeds", ["calibrate", "--seeds", "6", "--workers", "1", *PHANTOM],
          "6 seeds make fewer than two groups of 5"),
    _case("calibrate_no_fresh_patients", ["calibrate", "--fresh-patients", "0", "--workers", "1", *PHANTOM],
          "--fresh-patients 0: the true Δ needs at least one new patient"),
    _case("calibrate_unservable_control", ["calibrate", "--controls", "ldm_mask", "--workers", "1", *PHANTOM],
          "generator ldm_mask cannot take label conditions"),
    _case("calibrate_out_a_folder", ["calibrate", "--out", "{tmp}/folder", "--workers", "1", *PHANTOM],
          "--out {tmp}/folder is a folder"),
    # verify
    _case("verify_seeds_not_numbers", ["verify", "--seeds", "0,x", *CACHE],
          "--seeds must be comma-separated seed numbers, e.g. 0,1; got '0,x'"),
    _case("verify_cache_unwritable", ["verify", "--cache-dir", "/proc/cxrbench-cache", str(ORACLE_TASK_FILE)],
          "--cache-dir /proc/cxrbench-cache: cannot write there"),
    _case("verify_seeds_not_in_the_entry", ["verify", "--seeds", "99", str(ORACLE_TASK_FILE), *CACHE],
          "--seeds 99: the entry holds none of these seeds (it holds 0-4)"),
]


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("args, expected, files", CASES)
def test_bad_input_is_refused_in_one_line_before_any_work(tripwire, args, expected, files):
    for name, content in files.items():
        path = tripwire / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    _refused_in_one_line([arg.format(tmp=tripwire) for arg in args], expected.format(tmp=tripwire))


@pytest.mark.reliability("bad_input")
def test_a_gpu_this_machine_lacks_is_refused(tripwire):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _refused_in_one_line(["run", "-g", "oracle", "--device", "cuda", *[a.format(tmp=tripwire) for a in PHANTOM]],
                         "--device cuda: this machine has no such device (use --device cpu)")


@pytest.mark.reliability("bad_input")
def test_the_ray_executor_without_ray_names_the_extra(tripwire, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray: ImportError, as where it is not installed
    _refused_in_one_line(["run", "-g", "oracle", "--executor", "ray", *[a.format(tmp=tripwire) for a in PHANTOM]],
                         "--executor ray needs Ray, which is not installed: pip install 'cxrbench[ray]'")


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("option, target", [("--out", "full/result.json"), ("--cache-dir", "full/cache")])
def test_a_full_disk_is_refused_before_any_work(tripwire, monkeypatch, option, target):
    full, real = tripwire / "full", shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: real(path)._replace(free=0) if str(path).startswith(str(full)) else real(path))
    args = ["run", "-g", "oracle", "--task", "phantom_cls", "--cache-dir", str(tripwire / "cache"),
            option, str(tripwire / target)]
    _refused_in_one_line(args, f"{option} {tripwire / target}: its disk has 0.0 MiB free, and the command needs at "
                               f"least")


@pytest.mark.reliability("fault")
def test_a_result_the_disk_refuses_after_the_work_is_kept(tripwire, monkeypatch, reliability_tally):
    """The disk fills up while the cells run: the result is still printed, and the error says where the cells are
    (the cache, which a second run reuses: tests/test_runner.py)."""
    from datetime import datetime, timezone

    import cxrbench.cache
    from cxrbench.schemas import RunConfig, RunResult

    cache, out = tripwire / "cache", tripwire / "result.json"
    done = RunResult(protocol_version="2", cxrbench_version="0", created=datetime.now(timezone.utc),
                     config=RunConfig(tasks=["phantom_cls"], generators=["oracle"]), generators=[], tasks=[],
                     methods={}, environment={}, wall_seconds=3600.0)
    monkeypatch.setattr(cxrbench.runner, "run", lambda *args, **kwargs: done)
    write = cxrbench.cache.write_atomic

    def full_disk(path, data):
        if path == out:
            raise OSError(28, "No space left on device", str(path))
        return write(path, data)

    monkeypatch.setattr(cxrbench.cache, "write_atomic", full_disk)
    result = runner.invoke(app, ["run", "-g", "oracle", *[a.format(tmp=tripwire) for a in PHANTOM], "--out", str(out),
                                 "--format", "json"])
    assert result.exit_code == 2 and not list(tripwire.glob("*result.json*"))
    assert result.stderr.strip() == (f"error: the result could not be written to {out} (No space left on device); "
                                     f"it is printed above, and the cache {cache} keeps what it computed")
    assert RunResult.model_validate_json(result.stdout) == done
    reliability_tally(faults_injected=1, results_kept=1)


VALID_OPTIONS = {
    "ldm_text": {"preset": "tiny", "denoiser": {"steps": 9, "learning_rate": 1e-3}, "sampler": {"guidance_scale": 3.0}},
    "ldm_mask_proxy": {"preset": "cpu", "autoencoder": {"block_out_channels": [8, 16]}, "refine": {"rounds": 1}},
    "ldm_mask_reviewed": {"preset": "tiny", "feedback": "reviews/phantom_seg_ldm_mask.jsonl", "refine": {"rounds": 0}},
    "pretrained_pipeline": {"path": "/models/cxr-pipeline", "steps": 10, "guidance_scale": 7.5},
    "noise": {},
}
KEYS = st.one_of(st.sampled_from(["stpes", "Steps", "steps ", "preset", "refine", "denoiser.steps", "two\nlines", ""]),
                 st.text(max_size=6), st.integers(-3, 3))
VALUES = st.one_of(
    st.sampled_from(["4", "1e-3", "-1", "nan", "inf", "tiny", "", "2024-01-01"]), st.text(max_size=6),
    st.integers(-10**30, 10**30), st.sampled_from([0, -1, -5, 2**63, 10**400]), st.floats(), st.booleans(), st.none(),
    st.dates(), st.datetimes(), st.binary(max_size=4), st.lists(st.integers(-3, 10**5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@st.composite
def mutated_options(draw):
    """A valid config of some generator with one to three keys renamed, deleted, added or given an odd value."""
    name = draw(st.sampled_from(sorted(VALID_OPTIONS)))
    config = copy.deepcopy(VALID_OPTIONS[name])
    for _ in range(draw(st.integers(1, 3))):
        mappings = [config] + [v for v in config.values() if isinstance(v, dict)]
        node = draw(st.sampled_from(mappings))
        keys = sorted(node, key=str)
        action = draw(st.sampled_from(["rename", "delete", "insert", "replace"] if keys else ["insert"]))
        if action == "insert":
            node[draw(KEYS)] = draw(VALUES)
            continue
        key = draw(st.sampled_from(keys))
        if action == "rename":
            node[draw(KEYS)] = node.pop(key)
        elif action == "delete":
            del node[key]
        else:
            node[key] = draw(VALUES)
    return name, config


@pytest.mark.reliability("bad_input")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_options())
def test_mutated_generator_options_are_refused_in_one_line_or_still_valid(case):
    name, config = case
    cls = generator_class(name)
    try:
        options = cls.checked_options(config)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 400, message
        assert message.startswith((f"generator option {name}.", f"generator option {name}: ")), message
        return
    canonical = cls.canonical_config(options)
    as_json = json.dumps(canonical, allow_nan=False)  # strict JSON: no inf or NaN reaches a result file
    assert cls.checked_options(json.loads(as_json)) == options  # still a valid config, as JSON and back
    content_key("generator", "1", {"config": canonical})  # it can name a cache entry
