"""Precision of a fast network's run: fp32, or bf16 autocast where the hardware computes it natively.

Which precision `auto` means is decided where every run's is, `runtime.resolve_precision` (bf16 on
hardware that computes it natively, fp32 elsewhere: on a CPU without native bf16, AVX2 only, bf16
convolutions are emulated and slower than fp32, as benchmarks/fast/fast_apply.py measures). A trained
network's weights change every step, so instead of the stylize network's converted copy the
convolutions run under autocast; weights, optimiser and images stay fp32.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch



def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
