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

from nstcli.config.fields import Config, as_dict
from nstcli.errors import ConfigError, Interrupted, RunError
from nstcli.fast import checkpoint as checkpoints
from nstcli.fast import dataset as datasets
from nstcli.fast import modelfile
from nstcli.fast.checkpoint import CHECKPOINT
from nstcli.fast.network import Architecture, TransformNet
from nstcli.fast.precision import autocast, resolve_precision
from nstcli.terms.objective import content_layer_weights
from nstcli.outputs import check_output, prepare_folder
from nstcli.image.io import load_image, open_image, pil_to_tensor, prepare, resize_longest, save_image
from nstcli.reports import Callback, StepReport
from nstcli.terms.base import evaluate
from nstcli.terms.content import Content

# Config keys that shape the loss (and so the trained weights); the others do not apply to training.
LOSS_KEYS = ("content_weight", "style_weight", "tv_weight", "tv_stencil", "loss_normalization", "style_loss",
             "content_layers", "style_layers", "style_layer_weights", "weights", "input_convention", "pooling",
             "padding", "seed")


@dataclass(frozen=True)
class TrainSettings:
    """What `nst train` takes besides the config keys it shares with stylize."""

    steps: int = 2000
    batch_size: int = 4
    crop_size: int = 256
    lr: float = 1e-3
    style_size: int | None = None  # longest side of the style image; None: 1.5 x crop_size
    width: int = 32
    blocks: int = 5
    precision: str = "auto"
    checkpoint_every: int = 200
    preview_every: int = 100

    def check(self) -> "TrainSettings":
        for name, low in (("steps", 1), ("batch_size", 1), ("crop_size", 32), ("checkpoint_every", 0),
                          ("preview_every", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a number above 0, got {self.lr}")
        if self.style_size is not None and self.style_size < 32:
            raise ConfigError(f"--style-size must be at least 32, got {self.style_size}")
        Architecture(self.width, self.blocks).check()
        return self

    @property
    def style_side(self) -> int:
        return self.style_size or round(self.crop_size * datasets.CACHE_FACTOR)


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


class Perceptual:
    """The training loss: nstcli's terms on the frozen VGG19, averaged over a batch."""

    def __init__(self, config: Config, style: torch.Tensor, device: torch.device, precision: str = "fp32"):
        from nstcli.network.load import layers_needed, load_network
        from nstcli.terms.objective import pixel_terms, style_term_for
        from nstcli.terms.settings import LossSettings

        self.config = config
        self.loss = config.pick(LossSettings)
        self.device = device
        self.precision = precision
        # The run's precision, not config.precision: `nst train --precision fp32` means fp32 throughout.
        self.network = load_network(config, device, layers_needed(config), precision=precision)
        # No autocast here: VGG19 holds its own bf16 copy and hands back fp32 activations, so the Gram
        # matrices and every loss sum are fp32 (benchmarks/fast/fast_train_step.py measures what bf16 sums cost).
        self.style = style_term_for(self.loss, self.network, [prepare(style, device)], [1.0])
        self.pixels = pixel_terms(self.loss)

    def __call__(self, output: torch.Tensor, content: torch.Tensor):
        """(mean total, {term: mean value}) of `output` against `content`, both (B, 3, H, W)."""
        output = output.float()
        with torch.no_grad():
            # The photo's own features are needed only at the content layers: its pass stops there.
            targets = self.network(content, self.config.content_layers)
        features = self.network(output)
        batch = output.shape[0]
        total, values = None, {}
        # Terms are written for one image (the Wasserstein term refuses a batch, and the content term
        # is a mean over its own target): score each sample and average, which is the batch's mean.
        for i in range(batch):
            own = {name: targets[name][i:i + 1] for name in self.config.content_layers}
            # Normalised by this photo's own targets (loss_normalization), as stylize does per content image.
            content_term = Content(own, self.config.content_weight, content_layer_weights(self.loss, own))
            one = {name: value[i:i + 1] for name, value in features.items()}
            sample_total, sample_values = evaluate([content_term, self.style, *self.pixels], one,
                                                   output[i:i + 1].float())
            total = sample_total if total is None else total + sample_total
            for name, value in sample_values.items():
                values[name] = value if name not in values else values[name] + value
        return total.float() / batch, {name: value.float() / batch for name, value in values.items()}


def train_step(net: TransformNet, optimiser: torch.optim.Optimizer, loss: Perceptual, batch: torch.Tensor,
               precision: str):
    """One update on `batch`: (the network's output, the mean loss, its terms).

    Under bf16 only the transformation network's convolutions autocast: its weights and Adam's
    moments stay fp32 (stored in bf16, weights above about 0.25 in size would not move by an Adam
    step of lr 1e-3), and the loss is summed in fp32 (in bf16 a Gram loss near its optimum is off by
    several times its value): benchmarks/fast/fast_train_step.py measures both. A non-finite loss is not
    stepped on: the caller stops.
    """
    # The crops arrive channels_last (images.prepare), which VGG19 wants. The transformation network
    # took 0.76 x the time in that layout in fp32 but 1.5 x in bf16 autocast (benchmarks/fast/fast_train_step.py):
    # under bf16 it gets them in the standard layout.
    with autocast(batch.device, precision):
        out = net(batch.contiguous() if precision == "bf16" else batch)
    total, values = loss(out, batch)
    if torch.isfinite(total.detach()):
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
    return out, total, values


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


def _notify(callbacks, event: str, *args) -> None:
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(*args)


def train(style: str | os.PathLike, data: str | os.PathLike, output: str | os.PathLike, config: Config = Config(),
          settings: TrainSettings = TrainSettings(), callbacks: Sequence[Callback] = (),
          preview: str | os.PathLike | None = None) -> TrainResult:
    """Train a network for `style` on the photos under `data` and write it to `output`."""
    from nstcli.runtime import resolve_device
    from nstcli.network.weights import warn_if_random

    started = time.perf_counter()
    settings = settings.check()
    style, data, output = Path(style), Path(data), Path(output)
    folder = check_outputs(output, [style, *([preview] if preview is not None else [])])
    files = datasets.find_images(data)
    datasets.check_count(files, data)
    device = resolve_device(config.device)
    precision = resolve_precision(settings.precision, device)
    fingerprint, listing = _fingerprint(style, data, files, settings, config)
    state = checkpoints.load(folder, fingerprint, listing, style, data)
    warn_if_random(config.weights)

    torch.manual_seed(config.seed)  # the network's initial weights
    net = TransformNet(Architecture(settings.width, settings.blocks)).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(config.seed)
    log: list[dict] = []
    step = 0
    if state is not None:
        step, log = checkpoints.restore(state, folder / CHECKPOINT, net, optimiser, generator)
    resumed_from = step
    crops = datasets.Crops(files, settings.crop_size, generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # warned once above
        loss = Perceptual(config, load_image(style, size=settings.style_side), device, precision)
    shown = _preview_image(files, settings.crop_size, preview).to(device)
    previews: list[Path] = sorted(folder.glob("preview_*.png")) if state is not None else []

    def checkpoint() -> Path:
        return checkpoints.save(folder, {"fingerprint": fingerprint, "step": step, "net": net.state_dict(),
                                         "optimiser": optimiser.state_dict(), "generator": generator.get_state(),
                                         "log": log, "photos": listing})

    for callback in callbacks:
        callback.on_start(settings.steps)
    _notify(callbacks, "on_resume", step)
    stop = _Stop()
    consistent = True  # False while the weights are being updated: a checkpoint then would be half a step
    timed_images, timed_seconds = 0, 0.0
    try:
        with stop.deferred():
            net.train()
            while step < settings.steps:
                tick = time.perf_counter()
                batch = prepare(crops.batch(settings.batch_size), device)
                consistent = False
                out, total, values = train_step(net, optimiser, loss, batch, precision)
                value = float(total.detach())
                if not math.isfinite(value):
                    raise RunError(f"the loss became {value} at step {step + 1}; lower --lr (now "
                                   f"{settings.lr:g}) or the style weight, then run again (delete {folder} to "
                                   "start over)")
                step += 1
                consistent = True
                timed_seconds += time.perf_counter() - tick
                timed_images += settings.batch_size
                row = {"step": step, "loss": value, **{name: float(v.detach()) for name, v in values.items()}}
                log.append(row)
                if settings.preview_every and (step % settings.preview_every == 0 or step == settings.steps):
                    net.eval()
                    with torch.no_grad(), autocast(device, precision):
                        picture = net(shown).float().clamp(0, 1)
                    net.train()
                    folder.mkdir(parents=True, exist_ok=True)
                    previews.append(save_image(picture, folder / f"preview_{step:06d}.png"))
                report = StepReport(step=step, total=settings.steps, loss=row["loss"],
                                    terms={name: row[name] for name in values}, image=out[:1].detach(),
                                    size=tuple(batch.shape[-2:]))
                for callback in callbacks:
                    callback.on_step(report)
                if settings.checkpoint_every and step % settings.checkpoint_every == 0 and step < settings.steps:
                    checkpoint()
                if stop.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if consistent and step > resumed_from:
            where = f"; saved a checkpoint in {checkpoint()}"
        elif (folder / CHECKPOINT).exists():
            where = f"; the last checkpoint is {folder / CHECKPOINT}"
        else:
            where = "; no checkpoint yet"
        raise Interrupted(f"interrupted at step {step} of {settings.steps}{where}; run the same command again "
                          "to continue") from None
    finally:
        for callback in callbacks:
            callback.on_end()
    net.eval()
    training = {"steps": settings.steps, "batch_size": settings.batch_size, "crop_size": settings.crop_size,
                "lr": settings.lr, "style_size": settings.style_side, "precision": precision,
                "images": len(files), "config": fingerprint["config"],
                "style_file": style.name, "style_sha256": fingerprint["style_sha256"]}
    info = modelfile.ModelInfo(net.architecture, style.stem, training)
    modelfile.save(output, net.state_dict(), info)
    (folder / CHECKPOINT).unlink(missing_ok=True)
    last = log[-1] if log else {}
    return TrainResult(output=output, steps=step, seconds=time.perf_counter() - started,
                       images_per_second=timed_images / timed_seconds if timed_seconds else 0.0,
                       losses={k: v for k, v in last.items() if k != "step"}, resumed_from=resumed_from,
                       previews=previews, log=log)
