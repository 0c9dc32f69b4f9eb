"""`cxrbench data verify` and `cxrbench data fetch` on real copies, broken copies and without a network."""

import urllib.error
import urllib.request

from typer.testing import CliRunner

from cxrbench.cli import app

from .real_data import SHARED_DATA, covid_subset, shared_dataset

runner = CliRunner()


def test_verify_recognises_the_shared_covid_copy():
    shared_dataset("covid-lungs")
    result = runner.invoke(app, ["data", "verify", "covid-lungs", "--data-root", str(SHARED_DATA)])
    assert result.exit_code == 0, result.output
    assert "219" in result.output and "328-image copy" in result.output


def test_verify_names_a_truncated_image_and_fails(tmp_path):
    folder = covid_subset(tmp_path, rows=4)
    image = sorted((folder / "images").iterdir())[0]
    image.write_bytes(image.read_bytes()[:100])
    result = runner.invoke(app, ["data", "verify", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot read image" in result.output and image.name in result.output
    assert "Traceback" not in result.output


def test_verify_of_a_subset_is_not_a_known_copy(tmp_path):
    covid_subset(tmp_path, rows=6)
    result = runner.invoke(app, ["data", "verify", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "not a known copy" in result.output


def test_fetch_without_network_says_where_to_put_the_files(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    result = runner.invoke(app, ["data", "fetch", "pneumonia-kermany", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "no network here" in result.output and "pneumonia-kermany/" in result.output
    assert not (tmp_path / "pneumonia-kermany").exists()


def test_fetch_of_an_unknown_set_fails(tmp_path):
    result = runner.invoke(app, ["data", "fetch", "mnist", "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown open dataset 'mnist'" in result.output


def test_run_on_the_open_suite_without_data_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CXRBENCH_DATA_ROOT", raising=False)
    result = runner.invoke(app, ["run", "--suite", "open", "--generator", "classic_aug", "--cache-dir",
                                 str(tmp_path / "cache")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--data-root" in result.output and "covid-lungs/" in result.output
