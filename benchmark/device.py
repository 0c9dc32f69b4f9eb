"""What the device a model runs on may change, in one place: the policy the downstream recipes and sampling share.

The CPU is the reference device: committed entries are verified by retraining on it bit for bit (`kernels.py`),
so on the CPU this policy changes nothing (same ops, same dtypes, same order; `place` is `model.to(device)`,
`to_device` is `tensor.to(device)`, no autocast). Only a CUDA device gets the usual speed-ups: bf16 autocast in
training where the GPU supports bf16 (an older GPU trains in fp32 rather than fp16, which would need a loss
scaler), `channels_last` for models and image batches, pinned host memory with non-blocking copies, and larger
inference batches.

What stays the same on every device is what a cell's cache key means (the key holds no device): the training
batch size, the steps and the batch of the BatchNorm recomputation are the recipe's, not the device's. Only
inference batches (prediction, sampling), whose size changes no image's result beyond rounding, are per device.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

DeviceKind = Literal["cpu", "cuda", "mps"]

INFERENCE_BATCH_SIZE: dict[DeviceKind, int | None] = {"cpu": None, "mps": None, "cuda": 256}
"""Images per inference batch (prediction, embedding, sampling) by device kind; None keeps the caller's own size
(the CPU's 128 for prediction and 64 for sampling, unchanged). 256 on CUDA: a DenseNet-121 at 224 px under bf16
inference needs a few GiB for it, which any current data-centre GPU holds (a guess from the model's size: not yet
measured on a GPU)."""

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


@dataclass(frozen=True)
class DevicePolicy:
    """How to run on `device`: decided once from its kind (`device_policy`), applied by the recipes and samplers."""

    device: str
    kind: DeviceKind
    autocast_dtype: Literal["bfloat16"] | None
    """The autocast dtype on CUDA (bf16 where supported); None: full fp32, always on the CPU and MPS."""
    channels_last: bool
    pinned: bool
    """Host batches are copied to pinned memory and sent with non_blocking copies."""

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for a training step's forward pass on CUDA; nothing elsewhere. Losses are taken on
        `.float()` outputs; inference (predictions, features) stays fp32 on every device."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.kind, dtype=getattr(torch, self.autocast_dtype))

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` on the device (in `channels_last` on CUDA)."""
        import torch

        if self.channels_last:
            return model.to(self.device, memory_format=torch.channels_last)
        return model.to(self.device)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device: on CUDA through pinned memory with a non-blocking copy (the caching host
        allocator keeps the pinned copy alive until the transfer ends), image batches in `channels_last`."""
        if not self.pinned:
            return tensor.to(self.device)
        import torch

        layout = torch.channels_last if self.channels_last and tensor.dim() == 4 else torch.contiguous_format
        return tensor.pin_memory().to(self.device, non_blocking=True, memory_format=layout)

    def inference_batch_size(self, default: int) -> int:
        """This device kind's inference batch (`INFERENCE_BATCH_SIZE`), or `default` where it has none."""
        return INFERENCE_BATCH_SIZE[self.kind] or default


def device_kind(device: str) -> DeviceKind:
    """"cpu", "cuda" (also "cuda:N") or "mps"; anything else is refused."""
    if not _DEVICE.match(device):
        raise ConfigError(f"device {device!r}: expected cpu, cuda, cuda:N or mps")
    return device.partition(":")[0]  # type: ignore[return-value]


def device_policy(device: str, *, bf16_supported: bool | None = None) -> DevicePolicy:
    """The policy for `device`. `bf16_supported` (CUDA only) defaults to asking the GPU
    (`torch.cuda.is_bf16_supported()`); tests pass it to check the decisions on a machine without one."""
    kind = device_kind(device)
    if kind != "cuda":
        return DevicePolicy(device, kind, autocast_dtype=None, channels_last=False, pinned=False)
    if bf16_supported is None:
        import torch

        bf16_supported = torch.cuda.is_bf16_supported()
    return DevicePolicy(device, kind, autocast_dtype="bfloat16" if bf16_supported else None, channels_last=True,
                        pinned=True)
