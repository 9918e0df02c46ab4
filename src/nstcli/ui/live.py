"""Showing a run on the page while it runs: a progress bar every step, the current image every few."""

from __future__ import annotations

from nstcli.reports import Callback, StepReport
from nstcli.images import tensor_to_pil

# About this many image updates per run: each one sends a PNG to the browser, so updating every step
# of a long run would spend more time encoding images than optimising them.
PREVIEWS_PER_RUN = 20


def preview_every(steps: int) -> int:
    return max(1, steps // PREVIEWS_PER_RUN)


class LivePreview(Callback):
    """Writes progress into `progress` (an st.progress placeholder) and the image into `picture` (st.empty)."""

    def __init__(self, progress, picture, every: int | None = None):
        self.progress = progress
        self.picture = picture
        self.every = every
        self.shown: list[int] = []  # steps whose image was shown

    def on_start(self, total_steps: int) -> None:
        self.every = self.every or preview_every(total_steps)
        self.progress.progress(0.0, text=f"Step 0 / {total_steps}")

    def on_step(self, report: StepReport) -> None:
        text = " · ".join([f"Step {report.step} / {report.total}"] +
                          [f"{name} {value:.3g}" for name, value in report.terms.items()])
        self.progress.progress(min(1.0, report.step / max(1, report.total)), text=text)
        if report.step % self.every == 0 or report.step == report.total:
            self.picture.image(tensor_to_pil(report.image), caption=f"Step {report.step}")
            self.shown.append(report.step)
