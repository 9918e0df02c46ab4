"""Showing a run on the page while it runs: the progress text and the current image, paced by time.

Every update travels to the browser, which re-renders the page (and, for an image, fetches and
decodes it), often on the same cores as the run. Updated per step, the browser's work grew with the
step rate and took CPU time from the run (benchmarks/ui/ui_speed.py, figures in benchmarks/README.md).
Paced by the clock, the page costs a few updates per second however fast the steps are, and a slow
run still shows every step as it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nstcli import api
from nstcli.api import Callback, StepReport

# Seconds between updates: the text often enough to look live, the image often enough to watch the
# picture change. The last step is always shown.
PROGRESS_INTERVAL = 0.5
IMAGE_INTERVAL = 2.0


class LivePreview(Callback):
    """Writes progress into `progress` (an st.progress placeholder) and the image into `picture` (st.empty)."""

    def __init__(self, progress, picture, *, progress_interval: float = PROGRESS_INTERVAL,
                 image_interval: float = IMAGE_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.progress = progress
        self.picture = picture
        self.progress_interval = progress_interval
        self.image_interval = image_interval
        self.clock = clock
        self.shown: list[int] = []  # steps whose image was shown
        self.last_progress = self.last_image = 0.0

    def on_start(self, total_steps: int) -> None:
        self.progress.progress(0.0, text=f"Step 0 / {total_steps}")
        self.last_progress = self.last_image = self.clock()

    def on_step(self, report: StepReport) -> None:
        now = self.clock()
        last = report.step == report.total
        if last or now - self.last_progress >= self.progress_interval:
            text = " · ".join([f"Step {report.step} / {report.total}"] +
                              [f"{name} {value:.3g}" for name, value in report.terms.items()])
            self.progress.progress(min(1.0, report.step / max(1, report.total)), text=text)
            self.last_progress = now
        if last or now - self.last_image >= self.image_interval:
            self.picture.image(api.tensor_to_pil(report.image), caption=f"Step {report.step}")
            self.shown.append(report.step)
            self.last_image = now
