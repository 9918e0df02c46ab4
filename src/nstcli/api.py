"""The library API both skins (cli.py and the web page) call."""

from __future__ import annotations

import functools
import inspect
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from nstcli.callbacks import CheckpointSaver, LossLog, checkpoint_folder
from nstcli.config import FIELDS, Config
from nstcli.engine import (
    Callback,
    NonFiniteLoss,
    Objective,
    StopRun,
    content_targets,
    optimise,
    prepare,
    resize_image,
    resolve_device,
    style_targets,
)
from nstcli.errors import ConfigError, ImageError, Interrupted, RunError
from nstcli.features import VGGFeatures
from nstcli.images import (
    atomic_write,
    check_output_path,
    open_image,
    output_format,
    pil_to_tensor,
    resize_longest,
    save_image,
    tensor_to_pil,
)
from nstcli.vgg_layers import LAYER_INDEX, LAYER_NAMES
from nstcli import weights as weights_module

PathLike = str | os.PathLike


@dataclass
class StylizeResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    output: Path | None
    steps: int
    seconds: float
    losses: dict  # the last step's terms: loss, content, style, tv
    device: str
    weights: str
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (height, width) of every scale
    checkpoints: list[Path] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    extras: list[Path] = field(default_factory=list)  # contact sheet, loss curve

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
            "weights": self.weights,
            "checkpoints": [str(p) for p in self.checkpoints],
            "scales": [[int(h), int(w)] for h, w in self.sizes],
            "extras": [str(p) for p in self.extras],
        }


def layers_needed(config: Config) -> list[str]:
    return sorted(set(config.content_layers) | set(config.style_layers), key=LAYER_INDEX.__getitem__)


@functools.lru_cache(maxsize=4)
def _cached_network(weights: str, seed: int, pooling: str, layers: tuple[str, ...], device: str) -> VGGFeatures:
    state = weights_module.load_state_dict(weights, seed=seed)
    network = VGGFeatures(state, layers, pooling=pooling)
    return network.to(torch.device(device), memory_format=torch.channels_last)


def load_network(config: Config, device: torch.device | None = None, layers: Sequence[str] | None = None) -> VGGFeatures:
    """The frozen VGG19 trunk for `config` (or for `layers`), loaded once per process and reused."""
    device = device or resolve_device(config.device)
    weights = config.weights
    if weights not in ("imagenet", "random"):
        weights = str(Path(weights).expanduser().resolve())
    # Random weights depend on the seed; loaded ones do not, so do not key the cache on it.
    seed = config.seed if weights == "random" else 0
    layers = tuple(layers) if layers is not None else tuple(layers_needed(config))
    return _cached_network(weights, seed, config.pooling, layers, str(device))


def min_side(config: Config, layers: Sequence[str] | None = None) -> int:
    """Smallest image side the deepest layer still sees as at least one position."""
    deepest = max(LAYER_INDEX[name] for name in (layers or layers_needed(config)))
    pools = sum(1 for name in LAYER_NAMES[:deepest] if name.startswith("pool"))
    return 2**pools


def _blend_weights(count: int, blend: Sequence[float] | None) -> list[float]:
    """One weight per style image (config.style_blend, already checked to be finite and >= 0)."""
    if blend is None:
        return [1.0 / count] * count
    values = list(blend)
    if len(values) != count:
        raise ConfigError(f"'style_blend' has {len(values)} weights for {count} style images; "
                          "give one weight per style image")
    if sum(values) <= 0:
        raise ConfigError("'style_blend' weights must not all be 0")
    return values


def _fit_to_size(path: PathLike, image, longest: int, needed: int, scale: float = 1.0):
    """Scale so the longest side is `longest`; refuse if the short side ends up too small for the layers.

    Small images are scaled up like any other, so only a very elongated shape can fall short: its
    short side would vanish in VGG19's pooling before the deepest layer. Padding or stretching it
    would stylise something other than the picture given, so the user chooses (--size or a crop).
    `scale` is how `longest` relates to --size (style_scale for style images), for the hint.
    """
    resized = resize_longest(image, longest)
    if min(resized.size) >= needed:
        return resized
    long_side, short_side = max(image.size), min(image.size)
    enough = math.ceil(needed * long_side / short_side / scale)
    largest = FIELDS["size"].metadata["maximum"]
    hint = (f"use --size {enough} or more, or crop it" if enough <= largest
            else "crop it to a less elongated shape")
    size = round(longest / scale)
    raise ImageError(
        f"image {path} would be {resized.size[0]}x{resized.size[1]} px at --size {size}; the layers "
        f"used need at least {needed} px on the short side: {hint}")


def _at_least(image, longest: int, needed: int):
    """Resize to `longest`, but never below `needed` on the short side (coarse scales of a style)."""
    resized = resize_longest(image, longest)
    if min(resized.size) >= needed:
        return resized
    factor = needed / min(image.size)
    return image.resize((max(needed, round(image.width * factor)), max(needed, round(image.height * factor))),
                        Image.Resampling.LANCZOS)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    # The CPU allocator and the MPS backend report exhaustion as plain RuntimeErrors.
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "DefaultCPUAllocator" in text or "out of memory" in text.lower())


def _out_of_memory_as_run_error(function):
    """Turn memory exhaustion anywhere in a run (loading, targets, steps) into one RunError line."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if not _is_out_of_memory(exc):
                raise
            config = inspect.signature(function).bind(*args, **kwargs).arguments.get("config", Config())
            # Chained, not hidden: `nst --debug` then shows which allocation failed.
            raise RunError(f"out of memory at --size {config.size}; try a smaller --size, or coarse-to-fine "
                           "(--start-size) to reach it") from exc

    return guarded


def scale_sizes(config: Config) -> list[int]:
    """Longest side of every scale: start_size, start_size * factor, ..., size."""
    if config.start_size is None or config.start_size >= config.size:
        return [config.size]
    sizes, current = [], float(config.start_size)
    while round(current) < config.size:
        sizes.append(round(current))
        current *= config.scale_factor
    return sizes + [config.size]


class PreparedStyle:
    """Style images opened once, their blended Gram matrices cached per network and size.

    `stylize` accepts one in place of style paths. Without colour preservation the targets depend on
    the content image only through the size the style is resized to, so a batch builds one per style
    and reuses it for every content image instead of recomputing the Grams per item.
    """

    def __init__(self, styles: PathLike | Sequence[PathLike], style_blend: Sequence[float] | None = None):
        paths = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
        if not paths:
            raise ConfigError("give at least one style image")
        self.paths = [Path(path) for path in paths]
        self.blend = _blend_weights(len(self.paths), style_blend)
        self._images = None
        self._targets: dict = {}

    def images(self) -> list:
        """The decoded style images (opened on first use; raises ImageError naming a bad file)."""
        if self._images is None:
            self._images = [open_image(path) for path in self.paths]
        return self._images

    def tensors(self, size: int, needed: int, device: torch.device) -> list[torch.Tensor]:
        return [prepare(pil_to_tensor(_at_least(image, size, needed)), device) for image in self.images()]

    def targets(self, network: VGGFeatures, size: int, needed: int, layers: Sequence[str], device: torch.device):
        """(style tensors at `size`, blended Grams at `layers`), computed once per network and size."""
        # The key holds the network object itself, so it stays alive and cannot be mistaken for another.
        key = (network, size, needed, tuple(layers), str(device))
        if key not in self._targets:
            tensors = self.tensors(size, needed, device)
            self._targets[key] = (tensors, style_targets(network, tensors, self.blend, layers))
        return self._targets[key]


def _init_image(kind: str, content: torch.Tensor, style: torch.Tensor, seed: int) -> torch.Tensor:
    if kind == "content":
        return content.clone()
    if kind == "style":
        # Copy: at the same shape resize_image returns `style` itself, which the optimiser would then
        # update in place, corrupting a style tensor that PreparedStyle reuses for the next image.
        return resize_image(style, tuple(content.shape[-2:])).clone()
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(content.shape, generator=generator).to(content.device)


def _save_extras(output: Path, config: Config, saver: CheckpointSaver | None, log: LossLog) -> list[Path]:
    """The optional contact sheet of checkpoints and the loss curve, beside the output."""
    from nstcli import sheets

    written = []
    if config.contact_sheet and saver and saver.saved:
        frames = [Image.open(path).convert("RGB") for _, path in saver.saved]
        sheet = sheets.labelled_sheet(frames, [f"step {step}" for step, _ in saver.saved])
        path = output.with_name(f"{output.stem}_progress.png")
        written.append(atomic_write(path, lambda tmp: sheet.save(tmp, format="PNG")))
    if config.loss_curve and log.rows:
        curve = sheets.loss_curve(log.rows)
        path = output.with_name(f"{output.stem}_loss.png")
        written.append(atomic_write(path, lambda tmp: curve.save(tmp, format="PNG")))
    return written


def _run_watched(watchers: list[Callback], total: int, run, output: Path | None, saver, no_clobber=False,
                 save_on_interrupt=True):
    """Start/end the callbacks around `run()` and turn engine exits into library errors."""
    for callback in watchers:
        callback.on_start(total)
    try:
        return run()
    except StopRun as stop:
        saved = None
        if output is not None and save_on_interrupt:
            save_image(stop.image, output, no_clobber=no_clobber)
            saved = str(output)
        where = f"; saved the current image to {saved}" if saved else ""
        raise Interrupted(f"interrupted at step {stop.step}{where}", saved=saved) from None
    except NonFiniteLoss as exc:
        kept = f"; the last good checkpoint is {saver.last}" if saver and saver.last else ""
        raise RunError(f"{exc}{kept}") from None
    finally:
        for callback in watchers:
            callback.on_end()


@_out_of_memory_as_run_error
def stylize(
    content: PathLike,
    styles: PathLike | Sequence[PathLike],
    output: PathLike | None = None,
    config: Config = Config(),
    callbacks: Sequence[Callback] = (),
    no_clobber: bool = False,
    save_on_interrupt: bool = True,
) -> StylizeResult:
    """Repaint `content` in the style of `styles`; write `output` (atomically) if given.

    `styles` is one or more image paths, or a `PreparedStyle` whose targets are reused.
    `save_on_interrupt=False` leaves `output` unwritten on Ctrl-C (a batch must not take an
    unfinished image for a finished one when it resumes).
    """
    from nstcli import colour

    started = time.perf_counter()
    style = styles if isinstance(styles, PreparedStyle) else PreparedStyle(styles, config.style_blend)
    if output is not None:
        output = check_output_path(output, no_clobber=no_clobber)
    # Every input is read and size-checked before the network is loaded (maybe downloaded).
    need = min_side(config)
    content_image = open_image(content)
    _fit_to_size(content, content_image, config.size, need)
    style_final = max(1, round(config.size * config.style_scale))
    for path, image in zip(style.paths, style.images()):
        _fit_to_size(path, image, style_final, need, scale=config.style_scale)
    # Coarse scales too small for the deepest layer are skipped rather than refused: start_size is
    # a starting point, and for a very wide image the first useful scale is simply a larger one.
    sizes = [size for size in scale_sizes(config) if min(resize_longest(content_image, size).size) >= need]

    device = resolve_device(config.device)
    weights_module.warn_if_random(config.weights)
    network = load_network(config, device)
    torch.manual_seed(config.seed)

    layer_weights = config.style_layer_weights or (1.0,) * len(config.style_layers)
    log = LossLog()
    saver = None
    watchers: list[Callback] = [log]
    if output is not None and config.checkpoint_every:
        saver = CheckpointSaver(checkpoint_folder(output), config.checkpoint_every)
        watchers.append(saver)
    watchers += list(callbacks)
    total = config.steps * len(sizes)
    shapes: list[tuple[int, int]] = []

    def run() -> torch.Tensor:
        image = None
        content_tensor = None
        for index, size in enumerate(sizes):
            content_tensor = prepare(pil_to_tensor(resize_longest(content_image, size)), device)
            style_size = round(size * config.style_scale)
            target_content = content_tensor
            if config.preserve_color == "none":
                style_tensors, grams = style.targets(network, style_size, need, config.style_layers, device)
            else:
                # The style is recoloured to match this content image, so its Grams are this run's own.
                style_tensors = style.tensors(style_size, need, device)
                if config.preserve_color == "luminance":
                    style_tensors = [colour.match_luminance(s, content_tensor) for s in style_tensors]
                    target_content = colour.as_gray_rgb(colour.luminance(content_tensor))
                else:
                    style_tensors = [colour.match_histogram(s, content_tensor) for s in style_tensors]
                style_tensors = [prepare(s, device) for s in style_tensors]
                target_content = prepare(target_content, device)
                grams = style_targets(network, style_tensors, style.blend, config.style_layers)
            objective = Objective(
                content_targets=content_targets(network, target_content, config.content_layers),
                style_targets=grams,
                content_weight=config.content_weight,
                style_weight=config.style_weight,
                style_layer_weights=dict(zip(config.style_layers, layer_weights)),
                tv_weight=config.tv_weight,
            )
            if image is None:
                init = _init_image(config.init, target_content, style_tensors[0], config.seed)
            else:
                init = resize_image(image, tuple(content_tensor.shape[-2:]))
            shapes.append(tuple(content_tensor.shape[-2:]))
            image = optimise(network, init, objective, optimizer=config.optimizer, lr=config.learning_rate,
                             steps=config.steps, callbacks=watchers, first_step=1 + index * config.steps,
                             total_steps=total, scale=index)
        if config.preserve_color == "luminance":
            image = colour.recombine(image, content_tensor)
        return image

    image = _run_watched(watchers, total, run, output, saver, no_clobber, save_on_interrupt)
    image = image.detach().float().cpu().contiguous()
    extras: list[Path] = []
    if output is not None:
        save_image(image, output, no_clobber=no_clobber)
        extras = _save_extras(output, config, saver, log)
    return _result(image, output, total, started, log, device, config, shapes, saver, extras)


def _result(image, output, steps, started, log: LossLog, device, config: Config, sizes, saver,
            extras) -> StylizeResult:
    """What a finished stylize or reconstruct run returns: the image and the run's record."""
    return StylizeResult(
        image=image,
        output=output,
        steps=steps,
        seconds=time.perf_counter() - started,
        losses={k: v for k, v in (log.last or {}).items() if k in ("loss", "content", "style", "tv")},
        device=str(device),
        weights=weights_module.describe(config.weights),
        sizes=sizes,
        checkpoints=[path for _, path in saver.saved] if saver else [],
        log=log.rows,
        extras=extras,
    )


# The seed's figures (after Gatys et al. 2016, Fig. 1): content reconstructed from each block's first
# convolution, style from growing sets of them.
FIGURE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _reconstruct_one(kind: str, image: torch.Tensor, layers: Sequence[str], config: Config,
                     device: torch.device, watchers: list[Callback], first_step: int, total: int) -> torch.Tensor:
    network = load_network(config, device, layers=sorted(layers, key=LAYER_INDEX.__getitem__))
    if kind == "content":
        objective = Objective(content_targets(network, image, layers), {}, 1.0, 0.0, {})
    else:
        objective = Objective({}, style_targets(network, [image], [1.0], layers), 0.0, 1.0,
                              {name: 1.0 for name in layers})
    # White noise start, as in the paper's figure: what the layers constrain is all that comes back.
    init = _init_image("noise", image, image, config.seed)
    return optimise(network, init, objective, optimizer=config.optimizer, lr=config.learning_rate,
                    steps=config.steps, callbacks=watchers, first_step=first_step, total_steps=total)


@_out_of_memory_as_run_error
def reconstruct(
    kind: str,
    image: PathLike,
    output: PathLike | None = None,
    layers: Sequence[str] | None = None,
    config: Config = Config(),
    callbacks: Sequence[Callback] = (),
    all_layers: bool = False,
) -> StylizeResult:
    """Rebuild an image from noise using only its content (one layer) or only its style (a set of layers).

    `all_layers` runs the seed's whole figure (every layer, or every growing subset) and writes one
    labelled sheet, input first.
    """
    from nstcli.features import check_layers

    if kind not in ("content", "style"):
        raise ConfigError(f"reconstruct what? 'content' or 'style', not {kind!r}")
    started = time.perf_counter()
    if all_layers:
        runs = ([[name] for name in FIGURE_LAYERS] if kind == "content"
                else [list(FIGURE_LAYERS[: i + 1]) for i in range(len(FIGURE_LAYERS))])
    else:
        chosen = list(layers or (["conv4_1"] if kind == "content" else list(FIGURE_LAYERS)))
        check_layers(chosen)
        if kind == "content" and len(chosen) != 1:
            raise ConfigError("content reconstruction uses one layer; give --layer NAME or --all")
        runs = [chosen]
    if output is not None:
        output = check_output_path(output)
    source = open_image(image)
    sized = _fit_to_size(image, source, config.size, max(min_side(config, run) for run in runs))
    device = resolve_device(config.device)
    weights_module.warn_if_random(config.weights)
    target = prepare(pil_to_tensor(sized), device)
    torch.manual_seed(config.seed)

    log = LossLog()
    saver = None
    watchers: list[Callback] = [log]
    if output is not None and config.checkpoint_every and not all_layers:
        saver = CheckpointSaver(checkpoint_folder(output), config.checkpoint_every)
        watchers.append(saver)
    watchers += list(callbacks)
    total = config.steps * len(runs)

    def run() -> list[torch.Tensor]:
        return [_reconstruct_one(kind, target, layers_, config, device, watchers, 1 + i * config.steps, total)
                for i, layers_ in enumerate(runs)]

    results = _run_watched(watchers, total, run, output if not all_layers else None, saver)
    results = [r.detach().float().cpu() for r in results]
    if all_layers:
        from nstcli import sheets

        labels = ["input"] + [(layer[0] if kind == "content" else f"{layer[0]}..{layer[-1]}" if len(layer) > 1
                               else layer[0]) for layer in runs]
        sheet = sheets.labelled_sheet([tensor_to_pil(target)] + [tensor_to_pil(r) for r in results], labels)
        image_out = pil_to_tensor(sheet)
        if output is not None:
            atomic_write(output, lambda tmp: sheet.save(tmp, format=output_format(output)))
    else:
        image_out = results[0]
        if output is not None:
            save_image(image_out, output)
    return _result(image_out, output, total, started, log, device, config, [tuple(target.shape[-2:])], saver, [])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two images in [0, 1]."""
    mse = torch.mean((a.float().cpu() - b.float().cpu()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)

