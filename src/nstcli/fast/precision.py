"""Precision of a fast network's run: fp32, or bf16 autocast where the hardware computes it natively.

`auto` is bf16 on a GPU that supports it and fp32 elsewhere: on a CPU without native bf16 (AVX2
only) bf16 convolutions are emulated and slower than fp32 (benchmarks/fast_apply.py measures it).
Weights, optimiser and images stay fp32; only the convolutions run in the lower precision.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from nstcli.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(name: str, device: torch.device) -> str:
    name = (name or "fp32").lower()
    if name not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
