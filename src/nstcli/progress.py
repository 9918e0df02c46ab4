"""What the terminal shows while a run goes on: the CLI's progress bars (tqdm, on stderr)."""

from __future__ import annotations

import sys

from nstcli.engine import Callback, StepReport


class ProgressBar(Callback):
    """A tqdm bar on stderr: step / total, the scale, and every term the run has in the postfix.

    Under coarse-to-fine a step at 384 px costs four times one at 192 px, so a bar that counted
    steps would promise the end twice too early. The bar advances by work instead: each step by
    its scale's pixel count relative to the largest scale's, given the schedule (`on_schedule`).
    The bar is drawn at the first step, so nothing appears while the network loads (or fails to).
    """

    def __init__(self, description: str = "stylize", position: int | None = None, leave: bool = True):
        self.description = description
        self.position = position
        self.leave = leave
        self.bar = None
        self.total_steps = 0
        self.schedule: list[tuple[int, tuple[int, int]]] = []

    def on_schedule(self, schedule: list[tuple[int, tuple[int, int]]]) -> None:
        self.schedule = list(schedule)

    def on_start(self, total_steps: int) -> None:
        self.total_steps = total_steps

    def _cost(self, size: tuple[int, int]) -> float:
        largest = max((h * w for _, (h, w) in self.schedule), default=0)
        return (size[0] * size[1]) / largest if largest else 1.0

    def _open(self) -> None:
        from tqdm import tqdm

        work = sum(steps * self._cost(size) for steps, size in self.schedule) or self.total_steps
        # Redraw often on a terminal, rarely into a log file, which would otherwise get a line per step.
        interval = 0.2 if sys.stderr.isatty() else 10.0
        # The rate counts steps of the largest scale per second (exact for a single scale).
        self.bar = tqdm(total=work, desc=self.description, file=sys.stderr, dynamic_ncols=True,
                        position=self.position, leave=self.leave, mininterval=interval, unit="step",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}, {rate_fmt}]{postfix}")

    def on_step(self, report: StepReport) -> None:
        if self.bar is None:
            self._open()
        postfix = f"step {report.step}/{report.total}"
        if len({size for _, size in self.schedule}) > 1:  # coarse-to-fine (not reconstruct's figure)
            height, width = report.size
            postfix += f" · scale {report.scale + 1}/{len(self.schedule)} {width}x{height}"
        terms = ", ".join(f"{name}={value:.3g}" for name, value in report.terms.items())
        self.bar.set_postfix_str(f"{postfix} · {terms}" if terms else postfix, refresh=False)
        self.bar.update(self._cost(report.size) if self.schedule else 1)

    def on_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class FrameProgressBar(Callback):
    """`nst video`'s bar on stderr: frame i / n, seconds per frame and the time left (tqdm's rate and ETA).

    Frames kept from an earlier run count as done from the start. The postfix shows the step
    reached within the current frame (the first frame's full optimisation takes many times a later
    one's) and the latest frame's temporal error. Besides the engine's step reports it takes the
    video loop's (nstcli.video.VideoCallback's methods).
    """

    def __init__(self, description: str = "video"):
        self.description = description
        self.bar = None
        self.latest = ""

    def on_video_start(self, total_frames: int, finished: int) -> None:
        from tqdm import tqdm

        interval = 0.2 if sys.stderr.isatty() else 10.0
        self.bar = tqdm(total=total_frames, initial=finished, desc=self.description, unit="frame",
                        file=sys.stderr, dynamic_ncols=True, mininterval=interval)

    def on_step(self, report: StepReport) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"step {report.step}/{report.total}{self.latest}", refresh=False)

    def on_frame(self, report) -> None:
        if self.bar is None:
            return
        if report.temporal_error is not None:
            self.latest = f" · temporal error {report.temporal_error:.3g}"
        self.bar.set_postfix_str(f"{report.seconds:.1f} s/frame{self.latest}", refresh=False)
        self.bar.update(1)

    def on_encode(self, output) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"encoding {output}")

    def on_video_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
