"""Things that watch a run: the progress bar, checkpoint images, the loss log."""

from __future__ import annotations

import sys
from pathlib import Path

from nstcli.engine import Callback, StepReport
from nstcli.images import save_checkpoint


class ProgressBar(Callback):
    """A tqdm bar on stderr: step / total, and the weighted loss terms in the postfix."""

    def __init__(self, description: str = "stylize", position: int | None = None, leave: bool = True):
        self.description = description
        self.position = position
        self.leave = leave
        self.bar = None
        self.total: int | None = None

    def on_start(self, total_steps: int) -> None:
        # The bar is drawn at the first step, not here: loading (perhaps downloading) the network
        # comes after the start, and a failure there should leave just its error line.
        self.total = total_steps

    def on_step(self, report: StepReport) -> None:
        if self.total is None:
            return
        if self.bar is None:
            from tqdm import tqdm

            # Redraw often on a terminal, rarely into a log file, which would otherwise get a line per step.
            interval = 0.2 if sys.stderr.isatty() else 10.0
            self.bar = tqdm(total=self.total, desc=self.description, unit="step", file=sys.stderr,
                            dynamic_ncols=True, position=self.position, leave=self.leave,
                            mininterval=interval, initial=report.step - 1)
        postfix = {"content": f"{report.content:.3g}", "style": f"{report.style:.3g}"}
        if report.tv:
            postfix["tv"] = f"{report.tv:.3g}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def on_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = self.total = None


def checkpoint_folder(output: str | Path) -> Path:
    """out.png -> out_checkpoints/ beside it."""
    output = Path(output)
    return output.with_name(f"{output.stem}_checkpoints")


class CheckpointSaver(Callback):
    """Every `every` steps, write the current image to FOLDER/step_NNNN.png (torchvision save_image)."""

    def __init__(self, folder: str | Path, every: int):
        self.folder = Path(folder)
        self.every = every
        self.saved: list[tuple[int, Path]] = []

    @staticmethod
    def name(step: int) -> str:
        return f"step_{step:04d}.png"

    def on_start(self, total_steps: int) -> None:
        # Checkpoints from an earlier run into the same output would mix with this run's: clear ours.
        if self.folder.is_dir():
            for stale in self.folder.glob("step_*.png"):
                stale.unlink()

    def on_step(self, report: StepReport) -> None:
        if self.every and report.step % self.every == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = save_checkpoint(report.image, self.folder / self.name(report.step))
            self.saved.append((report.step, path))

    @property
    def last(self) -> Path | None:
        return self.saved[-1][1] if self.saved else None


class LossLog(Callback):
    """Keeps every step's loss terms, for --json, loss curves and the web page."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_step(self, report: StepReport) -> None:
        self.rows.append({"step": report.step, "scale": report.scale, "loss": report.loss,
                          "content": report.content, "style": report.style, "tv": report.tv})

    @property
    def last(self) -> dict | None:
        return self.rows[-1] if self.rows else None
