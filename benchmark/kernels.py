"""CPU kernels pinned to one instruction set, so that a cell trains to the same bits on every x86-64 machine.

torch picks its convolution kernels (oneDNN), its own vectorised kernels (ATen) and its matrix products
(MKL) by the widest instruction set the CPU has. Measured on the embedded suite (docs/verification.md):
with oneDNN capped at AVX2 on an AVX-512 machine, as on a machine without AVX-512, every downstream cell
trained to other predictions (probabilities up to 0.26 apart), which `cxrbench verify` could not tell
from forged ones. Capping all three at AVX2, which every x86-64 server of the last decade has, gives the
same kernels everywhere, so CI requires equality instead of a tolerance.

Set when cxrbench is imported, before torch loads; a value the user set explicitly wins and is recorded
in the result's environment, so that a run on other kernels is visible as such.
"""

from __future__ import annotations

import os
import platform

PINNED = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


def pin_cpu_kernels() -> None:
    """Cap the kernels' instruction set (x86-64 only; elsewhere there is nothing to cap)."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in PINNED.items():
            os.environ.setdefault(name, value)


def kernel_settings() -> dict[str, str]:
    """The settings in force, for a result's environment record."""
    return {name: os.environ.get(name, "unset") for name in PINNED}


def cpu_identity() -> str:
    """The CPU's vendor and model ("AuthenticAMD AMD EPYC ..."), or "unknown": the pins give equal bits across
    machines of one vendor only (docs/verification.md), so a result records which CPU trained it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            text = info.read(65536)
    except OSError:
        return platform.processor() or "unknown"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return " ".join(v for v in (fields.get("vendor_id"), fields.get("model name")) if v) or "unknown"
