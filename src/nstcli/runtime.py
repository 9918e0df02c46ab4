"""Where and how torch runs: the device, OpenMP waiting on CPUs, cuDNN autotuning on GPUs.

Measured in benchmarks/threads.py and benchmarks/step_cost.py; see benchmarks/README.md.
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
