"""The library API both skins (cli.py and the web page) call."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nstcli.callbacks import CheckpointSaver, LossLog, checkpoint_folder
from nstcli.config import Config
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


def _blend_weights(count: int, blend: Sequence[float] | None) -> list[float]:
    if blend is None:
        return [1.0 / count] * count
    blend = list(blend)
    if len(blend) != count:
        raise ConfigError(f"'style_blend' has {len(blend)} weights for {count} style images; "
                          "give one weight per style")
    if any(w < 0 for w in blend) or sum(blend) <= 0:
        raise ConfigError("'style_blend' weights must be non-negative and not all 0")
    return blend


class PreparedStyle:
    """Style images opened once, their blended Gram matrices cached per network and size.

    `stylize` accepts one in place of style paths. The targets depend on the content image only
    through the size the style is resized to (`config.size`), so a batch builds one per style and
    reuses it for every content image instead of recomputing the Grams per item.
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

    def targets(self, network: VGGFeatures, size: int, layers: Sequence[str], device: torch.device):
        """(style tensors at `size`, blended Grams at `layers`), computed once per network and size."""
        # The key holds the network object itself, so it stays alive and cannot be mistaken for another.
        key = (network, size, tuple(layers), str(device))
        if key not in self._targets:
            tensors = [prepare(pil_to_tensor(resize_longest(image, size)), device) for image in self.images()]
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


def stylize(
    content: PathLike,
    styles: PathLike | Sequence[PathLike],
    output: PathLike | None = None,
    config: Config = Config(),
    callbacks: Sequence[Callback] = (),
    style_blend: Sequence[float] | None = None,
    no_clobber: bool = False,
    save_on_interrupt: bool = True,
) -> StylizeResult:
    """Repaint `content` in the style of `styles`; write `output` (atomically) if given.

    `styles` is one or more image paths, or a `PreparedStyle` whose targets are reused.
    `save_on_interrupt=False` leaves `output` unwritten on Ctrl-C (a batch must not take an
    unfinished image for a finished one when it resumes).
    """
    started = time.perf_counter()
    style = styles if isinstance(styles, PreparedStyle) else PreparedStyle(styles, style_blend)
    if output is not None:
        output = check_output_path(output, no_clobber=no_clobber)
    content_image = open_image(content)
    style.images()  # a bad style file fails here, before the network is loaded

    device = resolve_device(config.device)
    network = load_network(config, device)
    torch.manual_seed(config.seed)

    content_small = resize_longest(content_image, config.size)
    if min(content_small.size) < min_side(config):
        raise ImageError(
            f"image {content} is {content_small.size[0]}x{content_small.size[1]} at --size {config.size}; "
            f"the layers used need at least {min_side(config)} px on the short side: raise --size or crop it")
    content_tensor = prepare(pil_to_tensor(content_small), device)
    style_tensors, style_grams = style.targets(network, config.size, config.style_layers, device)

    layer_weights = config.style_layer_weights or (1.0,) * len(config.style_layers)
    objective = Objective(
        content_targets=content_targets(network, content_tensor, config.content_layers),
        style_targets=style_grams,
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
        if output is not None and save_on_interrupt:
            save_image(stop.image, output)
            saved = str(output)
        where = f"; saved the current image to {saved}" if saved else ""
        raise Interrupted(f"interrupted at step {stop.step}{where}", saved=saved) from None
    except NonFiniteLoss as exc:
        kept = f"; the last good checkpoint is {saver.last}" if saver and saver.last else ""
        raise RunError(f"{exc}{kept}") from None
    except torch.OutOfMemoryError:
        raise RunError(f"out of memory at --size {config.size}; try a smaller --size") from None
    finally:
        for callback in watchers:
            callback.on_end()

    image = image.detach().float().cpu().contiguous()
    if output is not None:
        save_image(image, output)
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


def stylize_folder(
    inputs: Sequence[PathLike],
    styles: Sequence[PathLike],
    outdir: PathLike,
    config: Config = Config(),
    *,
    recursive: bool = False,
    fmt: str = "png",
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
    callbacks=None,
):
    """Stylize every image in `inputs` (files and folders) with every style into `outdir`.

    Returns a `batch.BatchRun`: `len()` is the number of items (in this shard); iterating it runs
    them one by one, yielding a `batch.ItemResult` each. Planning mistakes (name collisions, missing
    inputs), bad weights and bad style images raise here, before any item runs. See nstcli.batch.
    """
    from nstcli.batch import plan_batch, run_batch

    items = plan_batch(inputs, styles, outdir, recursive=recursive, fmt=fmt, shard=shard)
    return run_batch(items, config, overwrite=overwrite, callbacks=callbacks)
