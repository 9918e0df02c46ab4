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


def _init_image(kind: str, content: torch.Tensor, style: torch.Tensor, seed: int) -> torch.Tensor:
    if kind == "content":
        return content.clone()
    if kind == "style":
        return resize_image(style, tuple(content.shape[-2:]))
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
) -> StylizeResult:
    """Repaint `content` in the style of `styles`; write `output` (atomically) if given."""
    started = time.perf_counter()
    styles = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
    if not styles:
        raise ConfigError("give at least one style image")
    blend = _blend_weights(len(styles), style_blend)
    if output is not None:
        output = check_output_path(output, no_clobber=no_clobber)
    content_image = open_image(content)
    style_images = [open_image(path) for path in styles]

    device = resolve_device(config.device)
    network = load_network(config, device)
    torch.manual_seed(config.seed)

    content_small = resize_longest(content_image, config.size)
    if min(content_small.size) < min_side(config):
        raise ImageError(
            f"image {content} is {content_small.size[0]}x{content_small.size[1]} at --size {config.size}; "
            f"the layers used need at least {min_side(config)} px on the short side: raise --size or crop it")
    content_tensor = prepare(pil_to_tensor(content_small), device)
    style_tensors = [prepare(pil_to_tensor(resize_longest(image, config.size)), device) for image in style_images]

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
