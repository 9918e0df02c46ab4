"""Training a transformation network for one style (Johnson, Alahi & Fei-Fei 2016).

The loss is the perceptual loss of `nst stylize`, built from the same terms by the same config keys
(content and style layers and weights, style loss, total variation, the VGG19 weights): for each
photo crop x, the network's output y = f(x) is scored with the content term against x's own
features and the style term against the style image's statistics, and the network's weights take
an Adam step on the batch's mean. This is its own loop, not `engine.optimize` (which updates pixels),
but it reports through the same `StepReport`/`Callback` machinery, so the terminal bar is the same.

Interruption and resume: a checkpoint (network, Adam's moments, the step, the crop generator's
state and the loss log) is written every `checkpoint_every` steps and when the run is stopped by
Ctrl-C or SIGTERM, which are deferred to the end of the current step so that the weights saved
are never half-updated. Running the same command again continues from the checkpoint and draws
the same crops an uninterrupted run would, so it ends with the same weights (to float rounding:
the same sums in the same order, bit for bit on the same machine and thread count).

The loss and the update step are loss.py's.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from nstcli.config.commands import TrainSettings, checked
from nstcli.config.fields import Config, as_dict
from nstcli.errors import ConfigError, Interrupted, RunError, WriteError
from nstcli.fast import checkpoint as checkpoints
from nstcli.fast import dataset as datasets
from nstcli.fast import modelfile
from nstcli.fast.checkpoint import CHECKPOINT
from nstcli.fast.loss import Perceptual, train_step
from nstcli.fast.network import Architecture, TransformNet
from nstcli.fast.precision import autocast
from nstcli.config.specs import FAST_PRECISIONS
from nstcli.runtime import resolve_precision
from nstcli.image.io import load_image, open_image, pil_to_tensor, prepare, resize_longest, save_image
from nstcli.outputs import check_output, prepare_folder
from nstcli.reports import Callback, StepReport, notify
from nstcli.writes import make_folder

# Config keys that shape the loss (and so the trained weights); the others do not apply to training.
LOSS_KEYS = ("content_weight", "style_weight", "tv_weight", "tv_stencil", "loss_normalization", "style_loss",
             "content_layers", "style_layers", "style_layer_weights", "weights", "input_convention", "pooling",
             "padding", "seed")


def style_side(settings: TrainSettings) -> int:
    """The longest side the style image is seen at: `style_size`, or 1.5 x the crops' side."""
    return settings.style_size or round(settings.crop_size * datasets.CACHE_FACTOR)


def check_settings(settings: TrainSettings) -> TrainSettings:
    """Every value in its range (config/commands.py), and a network those sizes can build."""
    settings = checked(settings)
    Architecture(settings.width, settings.blocks).check()
    return settings


@dataclass
class TrainResult:
    output: Path
    steps: int
    seconds: float
    images_per_second: float
    losses: dict
    resumed_from: int
    previews: list[Path] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"output": str(self.output), "steps": self.steps, "seconds": round(self.seconds, 3),
                "images_per_second": round(self.images_per_second, 3), "loss": self.losses,
                "resumed_from": self.resumed_from, "previews": [str(p) for p in self.previews]}


def work_folder(output: str | os.PathLike) -> Path:
    """starry.safetensors -> starry_training/ beside it: the checkpoint and the previews."""
    output = Path(output)
    return output.with_name(f"{output.stem}_training")


def check_outputs(output: str | os.PathLike, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """The model path and its work folder, checked before any work as every command checks its -o
    (outputs.py); returns the work folder, which is made when the first checkpoint or preview is."""
    check_output(output, (modelfile.EXTENSION,), "model" + modelfile.EXTENSION, inputs=inputs)
    return prepare_folder(work_folder(output), "work folder", create=False)


def _fingerprint(style: Path, data: Path, files: Sequence[Path], settings: TrainSettings,
                 config: Config) -> tuple[dict, list[list]]:
    keys = as_dict(config)
    training = {key: keys[key] for key in LOSS_KEYS}
    run = asdict(settings)
    for key in ("checkpoint_every", "preview_every", "steps"):  # a resumed run may change these
        run.pop(key)
    listing = checkpoints.photo_listing(data, files)
    return checkpoints.fingerprint(style, listing, training, run), listing


class _Stop:
    """Ctrl-C and SIGTERM during training: finish the step, then stop (a second signal stops at once)."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def deferred(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handler)
        try:
            yield self
        finally:
            for signum, handler in self.previous.items():
                signal.signal(signum, handler)


def _preview_image(files: Sequence[Path], crop: int, preview: str | os.PathLike | None) -> torch.Tensor:
    if preview is not None:
        return load_image(preview, size=2 * crop)
    return pil_to_tensor(resize_longest(open_image(files[0]), 2 * crop))

class _Training:
    """One training run: the network, Adam, the crop generator, the log and the step reached (restored
    from the checkpoint when the run resumes), with what it writes into its work folder."""

    def __init__(self, style: Path, files: Sequence[Path], folder: Path, settings: TrainSettings, config: Config,
                 device: torch.device, precision: str, fingerprint: dict, listing: list, state: dict | None,
                 preview: str | os.PathLike | None, callbacks: Sequence[Callback]):
        self.settings, self.folder, self.device, self.precision = settings, folder, device, precision
        self.fingerprint, self.listing = fingerprint, listing
        torch.manual_seed(config.seed)  # the network's initial weights
        self.net = TransformNet(Architecture(settings.width, settings.blocks)).to(device)
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=settings.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.log: list[dict] = []
        self.step = 0
        if state is not None:
            self.step, self.log = checkpoints.restore(state, folder / CHECKPOINT, self.net, self.optimiser,
                                                      self.generator)
        self.resumed_from = self.step
        self.saved_step = self.step if state is not None else None  # the step of the checkpoint on disk
        self.crops = datasets.Crops(files, settings.crop_size, self.generator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # warned once by train()
            self.loss = Perceptual(config, load_image(style, size=style_side(settings)), device, precision, callbacks)
        self.shown = _preview_image(files, settings.crop_size, preview).to(device)
        self.previews: list[Path] = sorted(folder.glob("preview_*.png")) if state is not None else []
        self.timed_images, self.timed_seconds = 0, 0.0
        self.consistent = True  # False while the weights are being updated: a checkpoint then would be half a step

    def checkpoint(self) -> Path:
        make_folder(self.folder, what="work folder")
        try:
            path = checkpoints.save(self.folder, {
                "fingerprint": self.fingerprint, "step": self.step, "net": self.net.state_dict(),
                "optimiser": self.optimiser.state_dict(), "generator": self.generator.get_state(), "log": self.log,
                "photos": self.listing})
        except WriteError:
            try:  # a work folder holding nothing would only be in the way
                self.folder.rmdir()
            except OSError:
                pass
            raise
        self.saved_step = self.step
        return path

    def kept(self) -> str:
        """What a run stopped by a failed write leaves to continue from (a failed write keeps the previous file)."""
        if self.saved_step is None or not (self.folder / CHECKPOINT).is_file():
            return "no checkpoint was kept, so the next run starts over"
        return (f"the checkpoint of step {self.saved_step} is kept in {self.folder / CHECKPOINT}: run the same "
                "command again to continue from it")

    def stopped_by(self, error: WriteError) -> WriteError:
        return WriteError(f"{error}; {self.kept()}", error.path, error.errno)

    def save_preview(self) -> None:
        self.net.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            picture = self.net(self.shown).float().clamp(0, 1)
        self.net.train()
        make_folder(self.folder, what="work folder")
        # elsewhere=None: another -o would be another work folder, without this run's checkpoint.
        self.previews.append(save_image(picture, self.folder / f"preview_{self.step:06d}.png", elsewhere=None))

    def one_step(self, callbacks: Sequence[Callback]) -> None:
        """One batch: the update, its log row, a preview and a checkpoint when due, the report."""
        settings = self.settings
        tick = time.perf_counter()
        batch = prepare(self.crops.batch(settings.batch_size), self.device)
        self.consistent = False
        out, total, values = train_step(self.net, self.optimiser, self.loss, batch, self.precision)
        value = float(total.detach())
        if not math.isfinite(value):
            raise RunError(f"the loss became {value} at step {self.step + 1}; lower --lr (now "
                           f"{settings.lr:g}) or the style weight, then run again (delete {self.folder} to "
                           "start over)")
        self.step += 1
        self.consistent = True
        self.timed_seconds += time.perf_counter() - tick
        self.timed_images += settings.batch_size
        row = {"step": self.step, "loss": value, **{name: float(v.detach()) for name, v in values.items()}}
        self.log.append(row)
        if settings.preview_every and (self.step % settings.preview_every == 0 or self.step == settings.steps):
            self.save_preview()
        report = StepReport(step=self.step, total=settings.steps, loss=row["loss"],
                            terms={name: row[name] for name in values}, image=out[:1].detach(),
                            size=tuple(batch.shape[-2:]))
        notify(callbacks, "on_step", report)
        if settings.checkpoint_every and self.step % settings.checkpoint_every == 0 and self.step < settings.steps:
            self.checkpoint()

    def run(self, callbacks: Sequence[Callback]) -> None:
        """Steps until `settings.steps`; Ctrl-C or SIGTERM ends the current step, saves a checkpoint and stops."""
        notify(callbacks, "on_start", self.settings.steps)
        notify(callbacks, "on_resume", self.step)
        stop = _Stop()
        try:
            with stop.deferred():
                self.net.train()
                while self.step < self.settings.steps:
                    self.one_step(callbacks)
                    if stop.requested:
                        raise KeyboardInterrupt
        except WriteError as exc:
            raise self.stopped_by(exc) from None
        except KeyboardInterrupt:
            if self.consistent and self.step > self.resumed_from:
                try:
                    where = f"; saved a checkpoint in {self.checkpoint()}"
                except WriteError as exc:
                    raise self.stopped_by(exc) from None
            elif (self.folder / CHECKPOINT).exists():
                where = f"; the last checkpoint is {self.folder / CHECKPOINT}"
            else:
                where = "; no checkpoint yet"
            raise Interrupted(f"interrupted at step {self.step} of {self.settings.steps}{where}; run the same "
                              "command again to continue") from None
        finally:
            notify(callbacks, "on_end")


def train(style: str | os.PathLike, data: str | os.PathLike, output: str | os.PathLike, config: Config = Config(),
          settings: TrainSettings = TrainSettings(), callbacks: Sequence[Callback] = (),
          preview: str | os.PathLike | None = None) -> TrainResult:
    """Train a network for `style` on the photos under `data` and write it to `output`."""
    from nstcli.runtime import resolve_device
    from nstcli.network.sources import warn_if_random

    started = time.perf_counter()
    settings = check_settings(settings)
    style, data, output = Path(style), Path(data), Path(output)
    folder = check_outputs(output, [style, *([preview] if preview is not None else [])])
    files = datasets.find_images(data)
    datasets.check_count(files, data)
    device = resolve_device(config.device)
    precision = resolve_precision(settings.precision, device, FAST_PRECISIONS)
    fingerprint, listing = _fingerprint(style, data, files, settings, config)
    state = checkpoints.load(folder, fingerprint, listing, style, data)
    warn_if_random(config.weights)

    run = _Training(style, files, folder, settings, config, device, precision, fingerprint, listing, state, preview,
                    callbacks)
    run.run(callbacks)
    run.net.eval()
    training = {"steps": settings.steps, "batch_size": settings.batch_size, "crop_size": settings.crop_size,
                "lr": settings.lr, "style_size": style_side(settings), "precision": precision,
                "images": len(files), "config": fingerprint["config"],
                "style_file": style.name, "style_sha256": fingerprint["style_sha256"]}
    info = modelfile.ModelInfo(run.net.architecture, style.stem, training)
    try:
        # Another -o would be another work folder: what helps is room or permission where it is.
        modelfile.save(output, run.net.state_dict(), info, elsewhere=None)
    except WriteError as exc:
        if run.saved_step != run.step:
            try:  # the finished training is worth keeping: a re-run then only writes the model
                run.checkpoint()
            except WriteError:
                pass
        if run.saved_step == run.step and (folder / CHECKPOINT).is_file():
            raise WriteError(f"{exc}; the finished training is kept in {folder / CHECKPOINT}: run the same command "
                             "again to write the model", exc.path, exc.errno) from None
        raise run.stopped_by(exc) from None
    (folder / CHECKPOINT).unlink(missing_ok=True)
    last = run.log[-1] if run.log else {}
    return TrainResult(output=output, steps=run.step, seconds=time.perf_counter() - started,
                       images_per_second=run.timed_images / run.timed_seconds if run.timed_seconds else 0.0,
                       losses={k: v for k, v in last.items() if k != "step"}, resumed_from=run.resumed_from,
                       previews=run.previews, log=run.log)
