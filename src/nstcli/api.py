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
from nstcli.images import check_output_path, open_image, pil_to_tensor, resize_longest, save_image
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
        }


def layers_needed(config: Config) -> list[str]:
    return sorted(set(config.content_layers) | set(config.style_layers), key=LAYER_INDEX.__getitem__)


@functools.lru_cache(maxsize=4)
def _cached_network(weights: str, seed: int, pooling: str, layers: tuple[str, ...], device: str) -> VGGFeatures:
    state = weights_module.load_state_dict(weights, seed=seed)
    network = VGGFeatures(state, layers, pooling=pooling)
    return network.to(torch.device(device), memory_format=torch.channels_last)


def load_network(config: Config, device: torch.device | None = None) -> VGGFeatures:
    """The frozen VGG19 trunk for `config`, loaded once per process and reused."""
    device = device or resolve_device(config.device)
    weights_module.warn_if_random(config.weights)
    weights = config.weights
    if weights not in ("imagenet", "random"):
        weights = str(Path(weights).expanduser().resolve())
    # Random weights depend on the seed; loaded ones do not, so do not key the cache on it.
    seed = config.seed if weights == "random" else 0
    return _cached_network(weights, seed, config.pooling, tuple(layers_needed(config)), str(device))


def min_side(config: Config) -> int:
    """Smallest image side the deepest layer still sees as at least one position."""
    deepest = max(LAYER_INDEX[name] for name in layers_needed(config))
    pools = sum(1 for name in LAYER_NAMES[:deepest] if name.startswith("pool"))
    return 2**pools


def _blend_weights(count: int, blend: str | Sequence[float] | None) -> list[float]:
    """One weight per style image. `blend` may be the text given to --style-blend ("0.7,0.3")."""
    if blend is None or (isinstance(blend, str) and not blend.strip()):
        return [1.0 / count] * count
    given = blend
    try:
        parts = blend.split(",") if isinstance(blend, str) else list(blend)
        values = [float(part) for part in parts]
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"--style-blend {given!r} is not a comma-separated list of numbers; "
                          "give one weight per style image, e.g. 0.7,0.3") from None
    if len(values) != count:
        raise ConfigError(f"--style-blend has {len(values)} weights for {count} style images; "
                          "give one weight per style image")
    # inf or nan would turn every blended Gram matrix into nan and fail only at the first step.
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ConfigError(f"--style-blend weights must be finite, non-negative and not all 0, got {given!r}")
    return values


def _fit_to_size(path: PathLike, image, config: Config, needed: int):
    """Scale so the longest side is --size; refuse if the short side ends up too small for the layers.

    Small images are scaled up like any other, so only a very elongated shape can fall short: its
    short side would vanish in VGG19's pooling before the deepest layer. Padding or stretching it
    would stylise something other than the picture given, so the user chooses (--size or a crop).
    """
    resized = resize_longest(image, config.size)
    if min(resized.size) >= needed:
        return resized
    long_side, short_side = max(image.size), min(image.size)
    enough = math.ceil(needed * long_side / short_side)
    largest = FIELDS["size"].metadata["maximum"]
    hint = (f"use --size {enough} or more, or crop it" if enough <= largest
            else "crop it to a less elongated shape")
    raise ImageError(
        f"image {path} would be {resized.size[0]}x{resized.size[1]} px at --size {config.size}; the layers "
        f"used need at least {needed} px on the short side: {hint}")


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
            raise RunError(f"out of memory at --size {config.size}; try a smaller --size") from exc

    return guarded


def _init_image(kind: str, content: torch.Tensor, style: torch.Tensor, seed: int) -> torch.Tensor:
    if kind == "content":
        return content.clone()
    if kind == "style":
        return resize_image(style, tuple(content.shape[-2:]))
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(content.shape, generator=generator).to(content.device)


@_out_of_memory_as_run_error
def stylize(
    content: PathLike,
    styles: PathLike | Sequence[PathLike],
    output: PathLike | None = None,
    config: Config = Config(),
    callbacks: Sequence[Callback] = (),
    style_blend: str | Sequence[float] | None = None,
    no_clobber: bool = False,
) -> StylizeResult:
    """Repaint `content` in the style of `styles`; write `output` (atomically) if given."""
    started = time.perf_counter()
    styles = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
    if not styles:
        raise ConfigError("give at least one style image")
    blend = _blend_weights(len(styles), style_blend)
    if output is not None:
        output = check_output_path(output, no_clobber=no_clobber)
    # Every input is read and size-checked before the network is loaded (maybe downloaded).
    content_small = _fit_to_size(content, open_image(content), config, min_side(config))
    styles_small = [_fit_to_size(path, open_image(path), config, min_side(config)) for path in styles]

    device = resolve_device(config.device)
    network = load_network(config, device)
    torch.manual_seed(config.seed)

    content_tensor = prepare(pil_to_tensor(content_small), device)
    style_tensors = [prepare(pil_to_tensor(image), device) for image in styles_small]

    layer_weights = config.style_layer_weights or (1.0,) * len(config.style_layers)
    objective = Objective(
        content_targets=content_targets(network, content_tensor, config.content_layers),
        style_targets=style_targets(network, style_tensors, blend, config.style_layers),
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        style_layer_weights=dict(zip(config.style_layers, layer_weights)),
        tv_weight=config.tv_weight,
    )
    init = _init_image(config.init, content_tensor, style_tensors[0], config.seed)

    log = LossLog()
    saver = None
    watchers: list[Callback] = [log]
    if output is not None and config.checkpoint_every:
        saver = CheckpointSaver(checkpoint_folder(output), config.checkpoint_every)
        watchers.append(saver)
    watchers += list(callbacks)
    for callback in watchers:
        callback.on_start(config.steps)
    try:
        image = optimise(network, init, objective, optimizer=config.optimizer, lr=config.learning_rate,
                         steps=config.steps, callbacks=watchers)
    except StopRun as stop:
        saved = None
        if output is not None:
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

    image = image.detach().float().cpu().contiguous()
    if output is not None:
        save_image(image, output, no_clobber=no_clobber)
    return StylizeResult(
        image=image,
        output=output,
        steps=config.steps,
        seconds=time.perf_counter() - started,
        losses={k: v for k, v in (log.last or {}).items() if k in ("loss", "content", "style", "tv")},
        device=str(device),
        weights=weights_module.describe(config.weights),
        sizes=[tuple(image.shape[-2:])],
        checkpoints=[path for _, path in saver.saved] if saver else [],
        log=log.rows,
    )
