"""One library call's record: its watchers, how the engine's exits become library errors, its result."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nstcli.network.sources import describe
from nstcli.optim.callbacks import CheckpointSaver, LossLog, checkpoint_folder
from nstcli.optim.engine import NonFiniteLoss, StopRun
from nstcli.reports import Callback
from nstcli.errors import Interrupted, RunError, WriteError
from nstcli.image.io import save_image
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.optim.stopping import Plateau


@dataclass
class StylizeResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    output: Path | None
    steps: int
    seconds: float
    losses: dict  # the last step's total ("loss") and every term's weighted value, by name
    device: str
    weights: str
    precision: str = "fp32"  # the network's convolutions (runtime.resolve_precision); the rest is fp32
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (height, width) of every scale
    checkpoints: list[Path] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    extras: list[Path] = field(default_factory=list)  # contact sheet, loss curve
    tiling: list[dict | None] = field(default_factory=list)  # per scale: None, or its tiles (tiling/plan.py)
    scale_steps: list[dict] = field(default_factory=list)  # per scale: steps given, steps run, why it ended
    peak_memory: int | None = None  # bytes: the process's peak resident set (CPU) or the GPU's peak allocated

    def summary(self) -> dict:
        """A JSON-ready description (what `--json` prints)."""
        height, width = self.image.shape[-2:]
        return {
            "output": str(self.output) if self.output else None,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "loss": self.losses,
            "width": int(width),
            "height": int(height),
            "device": self.device,
            "precision": self.precision,
            "weights": self.weights,
            "checkpoints": [str(p) for p in self.checkpoints],
            "scales": [[int(h), int(w)] for h, w in self.sizes],
            "extras": [str(p) for p in self.extras],
            "tiling": list(self.tiling),
            "scale_steps": list(self.scale_steps),
            "peak_memory_mb": round(self.peak_memory / 2**20) if self.peak_memory else None,
        }


@dataclass(frozen=True)
class RunSettings:
    """What a call's record, its engine and its start read of the config (fields named as its keys)."""

    device: str
    precision: str
    seed: int
    init: str
    optimizer: str
    learning_rate: float
    stop_window: int
    stop_tolerance: float
    adam_betas: tuple[float, ...]
    pyramid_levels: int
    average: float
    checkpoint_every: int
    contact_sheet: bool
    loss_curve: bool
    weights: str

    @property
    def optimizer_settings(self) -> OptimizerSettings:
        return OptimizerSettings(self.optimizer, self.learning_rate, tuple(self.adam_betas), self.pyramid_levels)

    @property
    def plateau(self) -> Plateau | None:
        rule = Plateau(self.stop_window, self.stop_tolerance)
        return rule if rule.active else None


class Run:
    """The watchers of one call (loss log, checkpoints, the caller's callbacks) and its clock.

    `execute` starts and ends the watchers around the work and turns the engine's exits into library
    errors; `result` packs what the call returns.
    """

    def __init__(self, settings: RunSettings, output: Path | None, callbacks: Sequence[Callback] = (),
                 checkpoints: bool = True):
        self.settings = settings
        self.started = time.perf_counter()
        self.log = LossLog()
        self.saver = None
        if output is not None and settings.checkpoint_every and checkpoints:
            self.saver = CheckpointSaver(checkpoint_folder(output), settings.checkpoint_every)
        self.watchers: list[Callback] = [self.log] + ([self.saver] if self.saver else []) + list(callbacks)
        self.sizes: list[tuple[int, int]] = []
        self.tiling: list[dict | None] = []
        self.scale_steps: list[dict] = []  # {"given", "ran", "stopped"} of every scale run so far

    def execute(self, total: int, work: Callable[[], object], *, save_to: Path | None = None,
                no_clobber: bool = False):
        """Run `work()`; on Ctrl-C save the current image to `save_to` (if given) and raise Interrupted."""
        for callback in self.watchers:
            callback.on_start(total)
        try:
            return work()
        except StopRun as stop:
            saved = None
            if save_to is not None:
                save_image(stop.image, save_to, no_clobber=no_clobber)
                saved = str(save_to)
            where = f"; saved the current image to {saved}" if saved else ""
            raise Interrupted(f"interrupted at step {stop.step}{where}", saved=saved) from None
        except NonFiniteLoss as exc:
            kept = f"; the last good checkpoint is {self.saver.last}" if self.saver and self.saver.last else ""
            raise RunError(f"{exc}{kept}") from None
        except WriteError as exc:
            if self.saver and self.saver.last and exc.path != self.saver.last:
                raise WriteError(f"{exc}; the checkpoints written before it are kept, the last is {self.saver.last}",
                                 exc.path, exc.errno) from None
            raise
        finally:
            for callback in self.watchers:
                callback.on_end()

    def result(self, image: torch.Tensor, output: Path | None, steps: int, device,
               extras: Sequence[Path] = (), precision: str = "fp32") -> StylizeResult:
        last = self.log.last or {}
        return StylizeResult(
            image=image,
            output=output,
            steps=steps,
            seconds=time.perf_counter() - self.started,
            losses={key: value for key, value in last.items() if key not in ("step", "scale")},
            device=str(device),
            weights=describe(self.settings.weights),
            precision=precision,
            sizes=list(self.sizes),
            checkpoints=[path for _, path in self.saver.saved] if self.saver else [],
            log=self.log.rows,
            extras=list(extras),
            tiling=list(self.tiling),
            scale_steps=list(self.scale_steps),
            peak_memory=peak_memory(device),
        )


def peak_memory(device) -> int | None:
    """Peak memory so far, measured: the GPU's peak allocation, or the process's peak resident set."""
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    # The CPU allocator and the MPS backend report exhaustion as plain RuntimeErrors.
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "DefaultCPUAllocator" in text or "out of memory" in text.lower())


@contextlib.contextmanager
def out_of_memory_as_run_error(size: int):
    """Turn memory exhaustion anywhere in a run of output side `size` (loading, targets, steps) into
    one RunError line."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        # Chained, not hidden: `nst --debug` then shows which allocation failed.
        raise RunError(f"out of memory at --size {size}; try a smaller --size, or coarse-to-fine "
                       "(--start-size) to reach it") from exc
