"""Things the library itself attaches to a run: checkpoint images and the loss log.

What a person watches (progress bars, summaries) lives with the skins: progress.py, ui/."""

from __future__ import annotations

from pathlib import Path

from nstcli.reports import Callback, StepReport
from nstcli.image.io import save_checkpoint
from nstcli.writes import make_folder


def checkpoint_folder(output: str | Path) -> Path:
    """out.png -> out_checkpoints/ beside it."""
    output = Path(output)
    return output.with_name(f"{output.stem}_checkpoints")


def check_checkpoint_folder(output: str | Path) -> Path:
    """OUT_checkpoints/ can be made and written (outputs.py), checked before the run, made by its first save."""
    from nstcli.outputs import prepare_folder

    return prepare_folder(checkpoint_folder(output), "checkpoint folder", create=False)


def replaced_beside(output: str | Path, checkpoints: bool = True, extras: bool = True) -> list[Path]:
    """The files a new run into `output` deletes or rewrites besides it: checkpoints, sheet, curve."""
    from nstcli.image.sheets import loss_curve_path, progress_sheet_path

    found = sorted(checkpoint_folder(output).glob("step_*.png")) if checkpoints else []
    return found + ([progress_sheet_path(output), loss_curve_path(output)] if extras else [])


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
            if not self.saved:
                # Made once, by the first save: a folder removed during the run is then an error
                # (the contact sheet reads every checkpoint back), not silently made again.
                make_folder(self.folder, what="checkpoint folder")
            path = save_checkpoint(report.image, self.folder / self.name(report.step))
            self.saved.append((report.step, path))

    @property
    def last(self) -> Path | None:
        return self.saved[-1][1] if self.saved else None


class LossLog(Callback):
    """Keeps every step's total and terms (whatever terms the run has), for --json, loss curves and the page."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_step(self, report: StepReport) -> None:
        self.rows.append({"step": report.step, "scale": report.scale, "loss": report.loss, **report.terms})

    @property
    def last(self) -> dict | None:
        return self.rows[-1] if self.rows else None
