"""Issue 18's progress display: a run shows its stages (pretraining, fine-tuning, sampling, the cells) on one
display drawn by the parent process alone, worker processes reporting to it, and nothing without a terminal."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import replace

import pytest
from rich.console import Console

from cxrbench import progress
from cxrbench.cache import Cache
from cxrbench.executor import worker_pool
from cxrbench.plan import checked_config, plan_tasks
from cxrbench.runner import compute, run
from cxrbench.schemas import RunConfig
from cxrbench.task_data import load_pretraining_pool
from cxrbench.tasks.embedded.tasks import PhantomSegmentation

from .conftest import TINY
from .test_pretraining import one_thread  # noqa: F401 (a fixture)

STAGES = ["ldm_mask: pretraining on phantom_seg's pool - autoencoder",
          "ldm_mask: pretraining on phantom_seg's pool - denoiser",
          "ldm_mask: fine-tuning on task phantom_seg (regime n24) - denoiser",
          "ldm_mask: sampling 12 images on task phantom_seg (regime n24, seed 0) - denoising",
          "cells: "]


def _screen(terminal: bool) -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=terminal, width=200), screen


def _text(screen: io.StringIO) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # without cursor moves and colours


@pytest.fixture
def quick_phantom_seg(monkeypatch):
    """A pool of seconds, not minutes, to pretrain on, and downstream models of a few steps."""
    monkeypatch.setattr(PhantomSegmentation, "pretraining_patients", 30)
    monkeypatch.setattr(PhantomSegmentation, "schedule", replace(PhantomSegmentation.schedule, steps=3))
    load_pretraining_pool.cache_clear()
    yield
    load_pretraining_pool.cache_clear()


CONFIG = RunConfig(tasks=["phantom_seg"], generators=["ldm_mask", "classic_aug"], **TINY,
                   generator_config={"ldm_mask": {"preset": "tiny", "init": "pretrained"}})


@pytest.mark.usefixtures("one_thread", "quick_phantom_seg")
def test_a_terminal_sees_every_stage_of_a_pretrained_ldm_run(tmp_path):
    """The README's command, tiny: the pretraining and fine-tuning fits, the sampling inside a cell, and the cells
    bar, which stays in view completed."""
    console, screen = _screen(terminal=True)
    run(CONFIG, tmp_path / "cache", workers=1, show_progress=True, console=console)
    shown = _text(screen)
    for stage in STAGES:
        assert stage in shown, stage
    assert re.search(r"cells: phantom_seg .* 6/6", shown)


@pytest.mark.usefixtures("one_thread", "quick_phantom_seg")
def test_without_a_terminal_nothing_is_drawn_and_the_stages_are_logged(tmp_path, caplog):
    """A CI log: the fits and one LDM cell draw nothing; the stages are INFO lines."""
    plans = plan_tasks(checked_config(CONFIG), tmp_path)
    cell = next(arm.cells[0] for arm in plans[0].arms if arm.generator == "ldm_mask")
    console, screen = _screen(terminal=False)
    with caplog.at_level(logging.INFO, logger="cxrbench.progress"):
        compute(plans, [cell], Cache(tmp_path), workers=1, show_progress=True, console=console)
    assert screen.getvalue() == ""
    assert caplog.messages == ["ldm_mask: pretraining on phantom_seg's pool",
                               "ldm_mask: fine-tuning on task phantom_seg (regime n24)",
                               "ldm_mask: sampling 12 images on task phantom_seg (regime n24, seed 0)"]


def _sample_in_a_worker(images: int) -> None:
    with progress.stage(f"sampling {images} images"), progress.stage("denoising", total=3) as steps:
        for _ in range(3):
            steps.advance()


def test_worker_processes_report_their_stages_to_the_parents_display():
    """The executor's pool: stages opened in workers reach the one display the parent draws (no display of their
    own, which would garble the terminal)."""
    console, screen = _screen(terminal=True)
    with progress.showing(True, console), worker_pool(2) as pool:
        list(pool.map(_sample_in_a_worker, [40, 41]))
    shown = _text(screen)
    assert "sampling 40 images - denoising" in shown and "sampling 41 images - denoising" in shown
