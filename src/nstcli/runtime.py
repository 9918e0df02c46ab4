"""Where and how torch runs: the device, the precision, OpenMP waiting on CPUs, cuDNN autotuning on GPUs.

Measured in benchmarks/decisions/threads.py and benchmarks/stylize/step_cost.py; see benchmarks/README.md.
"""

from __future__ import annotations

import os


def prefer_sleeping_openmp_threads(environ=os.environ) -> None:
    """Let idle OpenMP threads sleep instead of spin; call before torch is imported.

    torch runs its CPU kernels on one OpenMP thread per core, and GNU OpenMP makes a thread that
    finished its share spin until the next parallel region. When other processes compete for the
    cores (a shared machine, a laptop doing other work), the spinning thread takes the time slice its
    partner needs, and each of the hundreds of parallel regions in a step waits for the slowest
    thread: on a loaded 2-core machine a step took 2 to 3 times longer than with sleeping threads.
    On an idle machine sleeping costs one wake-up per region, microseconds against a step of a
    second. The OpenMP runtime reads the variable once, when torch loads it, so this only works
    before `import torch`; a value the user set is kept. `environ` may be the environment of a child
    process about to start (the web page's server).
    """
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def tune_for(device) -> None:
    """Per-device switches that make the same computation faster, chosen once per run."""
    import torch

    if device.type == "cuda":
        # Every step convolves the same shapes, so cuDNN's one-off search for the fastest algorithm
        # per layer pays for itself within the first steps.
        torch.backends.cudnn.benchmark = True


def resolve_device(name: str):
    """The torch device for `device:` (auto picks cuda, then mps, then cpu)."""
    import torch

    from nstcli.errors import ConfigError

    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("'device' is cuda but no CUDA GPU is available; use --device auto or cpu")
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise ConfigError("'device' is mps but Apple's MPS backend is not available; use --device auto or cpu")
    return torch.device(name)


# --- precision -----------------------------------------------------------------------------------
#
# A run's precision is the number format of the network's convolutions, decided here once (like the
# device) and honoured by features.VGGFeatures, which casts its input down and its outputs back up.
# Everything else stays float32: the optimised image and the optimiser's state (Adam's moments,
# L-BFGS's pairs), whose small updates bf16's 8-bit mantissa would round away; the loss sums; the
# Gram and covariance products, which add up tens of thousands of products per entry; and the
# Wasserstein term's eigendecomposition (float64). Measurements: benchmarks/README.md, "Precision".

PRECISION_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# CPU flags (as Linux names them in /proc/cpuinfo) of hardware bf16 dot products.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def dtype_of(precision: str):
    """The torch dtype of a resolved precision ("fp32", "bf16", "fp16")."""
    import torch

    return getattr(torch, PRECISION_DTYPES[precision])


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def mkldnn_bf16() -> bool:
    """oneDNN's own answer: true on any CPU with AVX-512 (it then emulates bf16) or native bf16."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def native_bf16_instructions() -> bool:
    """Whether the CPU has bf16 dot-product instructions: torch's probes where this torch has them,
    else the flags Linux reports (other systems: False, so auto stays fp32 there)."""
    import torch

    cpu = getattr(torch._C, "_cpu", None)
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        probe = getattr(cpu, check, None)
        if probe is not None:
            try:
                if probe():
                    return True
            except RuntimeError:
                pass
    return bool(_cpu_flags() & set(NATIVE_BF16_FLAGS))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512_BF16 or AMX) and oneDNN will use it.

    oneDNN's `_is_mkldnn_bf16_supported()` alone is not enough: it is true on any CPU with AVX-512,
    where bf16 is emulated with fp32 instructions plus conversions, and there bf16 convolutions were
    measured 2.5 times slower than fp32. Only CPUs with the bf16 dot-product instructions make bf16
    faster (2.0 to 2.1 times on a Zen 5 EPYC with AVX512_BF16).
    """
    return mkldnn_bf16() and native_bf16_instructions()


def cuda_has_native_bf16(device) -> bool:
    """Ampere (compute capability 8.0) and later compute bf16 in their tensor cores; older GPUs emulate it."""
    import torch

    return torch.cuda.get_device_capability(device)[0] >= 8


def has_native_bf16(device) -> bool:
    if device.type == "cpu":
        return cpu_has_native_bf16()
    if device.type == "cuda":
        return cuda_has_native_bf16(device)
    return False  # MPS: not measured, so auto stays fp32 there


def resolve_precision(name: str, device, choices=None) -> str:
    """The precision for `precision:` on `device`: "fp32", "bf16" or "fp16".

    `choices` are the names a command offers when fewer than every precision (a fast network's
    `--precision`: auto, fp32 or bf16); a name outside them is refused, named as the flag.

    auto picks bf16 where the hardware computes it natively (`has_native_bf16`), fp32 elsewhere.
    An explicit bf16 without native support runs (emulated: slower than fp32, same results) with a
    warning; fp16 on a CPU is refused: oneDNN computes it only on CPUs with AVX512_FP16/AMX-FP16,
    and where it does, bf16 is as fast with float32's range (no overflow of large activations).
    """
    import warnings

    from nstcli.errors import ConfigError, PrecisionWarning

    if choices is not None:
        name = (name or "fp32").lower()
        if name not in choices:
            raise ConfigError(f"--precision must be one of {', '.join(choices)}, got {name!r}")
    if name == "auto":
        return "bf16" if has_native_bf16(device) else "fp32"
    if name == "fp16" and device.type == "cpu":
        raise ConfigError("'precision' is fp16 but the device is a CPU, which computes fp16 slowly or not at "
                          "all; use --precision auto, bf16 or fp32 there (fp16 is for GPUs)")
    if name == "bf16" and device.type != "mps" and not has_native_bf16(device):
        what = "this CPU has no AVX512_BF16 or AMX" if device.type == "cpu" else "this GPU predates Ampere"
        warnings.warn(f"--precision bf16: {what}, so bf16 is emulated and slower than fp32 here "
                      "(--precision auto picks the faster)", PrecisionWarning, stacklevel=2)
    if name not in PRECISION_DTYPES:
        raise ConfigError(f"'precision' must be one of auto, {', '.join(PRECISION_DTYPES)}, got {name!r}")
    return name
