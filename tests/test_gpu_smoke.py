"""The GPU smoke script (tests/benchmarks/gpu_smoke.py) runs on the CPU with tiny settings, so it cannot rot.

Timings are not asserted: only that every part ran and reported positive throughput, memory and FLOPs.
"""

import json

import pytest
import torch

from tests.benchmarks.gpu_smoke import main

PARTS = ("classification training", "classification prediction", "segmentation training", "segmentation prediction",
         "LDM denoiser training", "LDM sampling")


def test_the_smoke_script_runs_on_the_cpu_with_tiny_settings(tmp_path, capsys):
    report = main(["--device", "cpu", "--tiny", "--json", str(tmp_path / "smoke.json")])
    assert json.loads((tmp_path / "smoke.json").read_text()) == json.loads(json.dumps(report))
    rows = report["rows"]
    assert [next(p for p in PARTS if row["part"].startswith(p)) for row in rows] == list(PARTS)
    assert all(row["images"] > 0 and row["seconds"] > 0 and row["images_per_s"] > 0 for row in rows)
    assert all(row["peak_memory_bytes"] > 0 and row["peak_memory_kind"] == "process ru_maxrss" for row in rows)
    training = [row for row in rows if "training" in row["part"] and not row["part"].startswith("LDM")]
    assert all(row["flops_per_image"] > 0 and row["flops_fraction_of_matmul_peak"] > 0 for row in training)
    assert report["matmul_peak_flops"] > 0 and report["autocast"] is None and not report["pinned"]
    printed = capsys.readouterr().out
    assert all(row["part"] in printed for row in rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--device", "cuda"])
    assert exited.value.code == 2
    assert "--device cuda: this machine has no CUDA device (try --device cpu --tiny)" in capsys.readouterr().err
