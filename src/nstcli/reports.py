"""What a run tells its watchers: the step report and the callback interface. Importable without
torch, so the CLI's bars and the page's preview can be defined before any network is needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class StepReport:
    """What the engine tells callbacks after each step."""

    step: int  # 1-based, counted across all scales
    total: int  # steps in the whole run
    loss: float  # the sum of the terms
    terms: dict[str, float]  # each term's weighted value, by name ("content", "style", "tv", ...)
    image: torch.Tensor  # the current image (1, 3, H, W) in [0, 1] (the average, if averaging); clone to keep
    scale: int = 0  # index of the current scale (coarse-to-fine), 0 for single-scale runs
    size: tuple[int, int] = (0, 0)  # (height, width) of the current scale
    tiles: int = 0  # tiles the step went over (tiling/run.py); 0 when the scale runs whole
    precision: str = "fp32"  # the network's ("fp32", "bf16", "fp16"); image, optimiser and losses are fp32


class Callback:
    """Receives progress from a run: the engine's steps, a batch's items, and the weights' download when
    a first run fetches them. Subclass and override what you need."""

    def on_schedule(self, schedule: list[tuple[int, tuple[int, int]]]) -> None:
        """Before the run: (steps, (height, width)) of every scale, for watchers that estimate time."""

    def on_start(self, total_steps: int) -> None:
        pass

    def on_step(self, report: StepReport) -> None:
        pass

    def on_scale_end(self, scale: int, ran: int, given: int, stopped: str) -> None:
        """A scale of the run ended after `ran` of its `given` steps; `stopped` says why
        (optim/stopping.py: "steps", or "plateau" when its loss had stopped improving)."""

    def on_end(self) -> None:
        pass

    def on_item(self, name: str) -> None:
        """A batch's next item starts (`name`: its output, relative to the output folder)."""

    def on_download(self, received: int, total: int | None) -> None:
        """While the network's weights arrive (a first run downloads them): bytes so far, of `total`
        when the server says; called with 0 before the first byte."""

    def on_download_end(self) -> None:
        """The download is over (finished or failed)."""


def notify(callbacks, event: str, *args) -> None:
    """Call `event` on every callback that has it: watchers of one kind may be handed another's events
    (a plain step callback watching a video's frames, or a download)."""
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(*args)
