"""The one optimisation loop both LDM parts share: seeded batches, autocast on CUDA, logged progress.

Its steps are a stage on the run's progress display (`cxrbench.progress`), which shows them after the fit they
belong to, in whichever process trains.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from cxrbench import progress

log = logging.getLogger(__name__)


@dataclass
class Trainer:
    """Where and how reproducibly to train: one seeded torch generator drives batches and noise."""

    device: str
    seed: int
    mixed_precision: str = "no"
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator(self.device).manual_seed(self.seed)
        self._batch_generator = torch.Generator().manual_seed(self.seed + 1)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.device.startswith("cuda") and self.mixed_precision != "no":
            dtype = torch.bfloat16 if self.mixed_precision == "bf16" else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def loop(self, name: str, model: torch.nn.Module, optimiser: torch.optim.Optimizer,
             schedule: torch.optim.lr_scheduler.LRScheduler, data: torch.Tensor | tuple[torch.Tensor, ...],
             steps: int, batch_size: int, loss_of: Callable[..., torch.Tensor],
             after_step: Callable[[], None] | None = None) -> list[float]:
        """`steps` AdamW steps on random batches of `data` (tensors sharing their first axis); returns the losses."""
        tensors = data if isinstance(data, tuple) else (data,)
        scaler = torch.amp.GradScaler("cuda", enabled=self.device.startswith("cuda") and self.mixed_precision == "fp16")
        model.train()
        losses: list[float] = []
        started = time.perf_counter()
        with progress.stage(name, total=steps) as shown:
            for step in range(steps):
                losses.append(self._step(model, optimiser, schedule, scaler, tensors, batch_size, loss_of, after_step))
                shown.advance()
                if (step + 1) % max(1, steps // 10) == 0:
                    recent = sum(losses[-50:]) / len(losses[-50:])
                    log.info("%s step %d/%d loss %.4f (%.0f s)", name, step + 1, steps, recent,
                             time.perf_counter() - started)
        model.eval()
        return losses

    def _step(self, model, optimiser, schedule, scaler, tensors, batch_size, loss_of, after_step) -> float:
        index = torch.randint(0, len(tensors[0]), (min(batch_size, len(tensors[0])),), generator=self._batch_generator)
        batch = [t[index].to(self.device) for t in tensors]
        with self.autocast():
            loss = loss_of(*batch)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimiser)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimiser)
        scaler.update()
        schedule.step()
        if after_step is not None:
            after_step()
        return float(loss.detach())
