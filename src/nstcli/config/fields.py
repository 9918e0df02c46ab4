"""Every tunable and its default: the Config, the only place defaults are written, and how it is loaded.

Precedence: defaults < YAML file (`--config`) < CLI flags actually given. The CLI builds its options
from `FIELDS`, so a key added here is a flag and a YAML key at once. This module does not import torch,
so `nst --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from nstcli.config.files import read_yaml
from nstcli.config.parse import show, value_of
from nstcli.config.specs import (COLOUR_MODES, CONTENT_LOSSES, DEVICES, INITS, INPUT_CONVENTIONS, LOSS_NORMALIZATIONS, MAX_STEPS,
                                 OPTIMIZERS, PADDINGS, POOLINGS, PRECISIONS, SCALE_ANCHORS, STYLE_LOSSES, STYLE_ROTATIONS,
                                 TV_STENCILS, Spec, _key)
from nstcli.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """One stylize run. Defaults: see configs/default.yaml (the `default` recipe) for where each value comes from."""

    size: int = _key(384, Spec(
        int, "Longest side of the output in pixels (aspect ratio kept).", minimum=16, maximum=16384))
    steps: int = _key(150, Spec(
        int, "Optimisation steps per scale; each is one VGG19 forward and backward. On the command line it "
        "also replaces a config file's first_steps (unless the first-steps flag is given too).", minimum=0,
        maximum=MAX_STEPS))
    first_steps: int | None = _key(None, Spec(
        int, "Steps at the first (coarsest) scale; empty means `steps`.", optional=True, minimum=0,
        maximum=MAX_STEPS))
    taper_from: int | None = _key(256, Spec(
        int, "Coarse-to-fine: scales after the first whose longest side is above this get proportionally fewer "
        "steps (steps x taper_from / side), as jcjohnson/neural-style's large-output script does: the coarse "
        "scales paint, the large ones add detail without repainting the photo over the strokes; empty runs "
        "`steps` at every scale.",
        optional=True, minimum=16, maximum=16384, metavar="PX"))
    stop_window: int = _key(20, Spec(
        int, "A scale stops before its `steps` once its lowest loss fell by less than stop_tolerance over this "
        "many steps (`steps` stays the most a scale may run); 0 never stops early.", minimum=0,
        maximum=MAX_STEPS))
    stop_tolerance: float = _key(0.05, Spec(
        float, "The fraction of the loss a scale must still shed over stop_window steps to go on; 0 never "
        "stops early.", minimum=0.0, maximum=1.0))
    optimizer: str = _key("lbfgs", Spec(str, "Optimiser.", choices=OPTIMIZERS))
    pyramid_levels: int = _key(0, Spec(
        int, "Optimise the image as a Laplacian pyramid of this many levels (Adam only; NNST uses 8): a "
        "step then moves coarse and fine detail alike, so large strokes form early; 0 optimises the pixels.",
        minimum=0, maximum=12))
    adam_betas: tuple[float, ...] = _key((0.9, 0.999), Spec(
        float, "Adam's two moment decays, comma-separated (each in [0, 1)).", many=True, optional=True))
    average: float = _key(0.0, Spec(
        float, "Decay of the running average of the iterates that checkpoints and the output show (e.g. "
        "0.99); 0 shows the iterate itself.", minimum=0.0, maximum=0.9999))
    lr: float | None = _key(None, Spec(
        float, "Learning rate; empty means the optimiser's own default (L-BFGS 1.0, Adam 0.02).",
        optional=True, positive=True))
    content_weight: float = _key(1.0, Spec(float, "Weight alpha of the content loss.", minimum=0.0))
    style_weight: float = _key(90.0, Spec(float, "Weight beta of the style loss.", minimum=0.0))
    tv_weight: float = _key(0.0, Spec(float, "Weight of the total-variation (smoothness) loss.", minimum=0.0))
    tv_stencil: str = _key("forward", Spec(
        str, "Total variation from forward differences, crowsonkb's nine-point stencil on the edge-replicated "
        "image, or jcjohnson/neural-style's right and down differences of the interior pixels.",
        choices=TV_STENCILS))
    loss_normalization: str = _key("target", Spec(
        str, "target: divide each layer's term by its target's magnitude, so that weights mean the same on any "
        "network (README, Losses); none: the raw formulas, as the recipes reproducing other tools use.",
        choices=LOSS_NORMALIZATIONS))
    style_loss: str = _key("gram", Spec(
        str, "Style statistics matched: Gram matrices (Gatys et al.), channel means and covariances under "
        "the Wasserstein-2 distance, or neighbours: every position's hypercolumn of the style layers pulled "
        "towards its nearest style hypercolumn (Kolkin et al. 2022, Neural Neighbor Style Transfer).",
        choices=STYLE_LOSSES))
    neighbour_content_mix: float = _key(0.75, Spec(
        float, "neighbours: the content's share in what the nearest style hypercolumns are searched for (the "
        "rest is the current image's); NNST's alpha. 1 searches for the photo's own, 0 for the image's.",
        minimum=0.0, maximum=1.0))
    neighbour_refresh: int = _key(0, Spec(
        int, "neighbours: search the nearest style hypercolumns again every N steps of a scale; 0 searches once "
        "per scale, at its first step (as NNST).", minimum=0, maximum=MAX_STEPS, metavar="STEPS"))
    content_loss: str = _key("features", Spec(
        str, "What content keeps: the photo's feature maps at the content layers (Gatys et al.), or "
        "self-similarity: the pattern of cosine distances between the positions of its content-layer "
        "hypercolumns (Kolkin et al. 2019, STROTSS), which keeps layout without the photo's texture.",
        choices=CONTENT_LOSSES))
    content_layers: tuple[str, ...] = _key(("relu4_2",), Spec(
        str, "Layers whose feature maps define content, comma-separated.", many=True))
    style_layers: tuple[str, ...] = _key(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), Spec(
        str, "Layers whose Gram matrices define style, comma-separated.", many=True))
    style_layer_weights: tuple[float, ...] | None = _key(None, Spec(
        float, "Per-style-layer weights, comma-separated, one per style layer; empty means 1 for each layer but "
        "those of VGG19's fifth block (relu5_1), which get 0.015: their Gram matrices carry the painting's objects, "
        "and at full weight paint its faces and eyes into the photo.",
        many=True, optional=True))
    style_blend: tuple[float, ...] | None = _key(None, Spec(
        float, "Weights of several style images, comma-separated, one per style (e.g. 0.7,0.3); empty means "
        "equal.", many=True, optional=True))
    style_rotations: tuple[float, ...] = _key((0,), Spec(
        int, "Read the style image also turned by these angles in degrees (any of 0, 90, 180, 270, "
        "comma-separated; NNST reads 0,90,180,270): more strokes and edges in more directions to match, each "
        "turn a share of the style's blend weight.", many=True, metavar="DEGREES"))
    style_scale: float = _key(1.0, Spec(
        float, "Style image size relative to the output (longest sides): below 1 gives finer brush strokes, "
        "above 1 coarser ones.", minimum=0.05, maximum=8.0))
    start_size: int | None = _key(192, Spec(
        int, "Coarse-to-fine: the smallest first scale (longest side). The scales are size, size / scale_factor, "
        "... down to no less than this (scales_from size: a first scale of 192 to 384 px with the defaults), or "
        "this, this x scale_factor, ... up to size (scales_from start); none (or at least size) means a single "
        "scale.", optional=True,
        minimum=16, maximum=16384))
    scale_factor: float = _key(2.0, Spec(
        float, "Coarse-to-fine: how much each scale grows over the previous one.", minimum=1.1, maximum=8.0))
    scales_from: str = _key("size", Spec(
        str, "Coarse-to-fine: grow the scales from start_size by scale_factor (ending at size), or shrink "
        "them from size by scale_factor down to no less than start_size.", choices=SCALE_ANCHORS))
    preserve_color: str = _key("none", Spec(
        str, "Keep the content's colours: luminance (transfer luminance only, Gatys et al. 2016), histogram "
        "(recolour the style image to the content's colour statistics first), or oklab (the result's OkLab "
        "chroma replaced by the content's, brought to the result's own colour spread, as NNST colourises).",
        choices=COLOUR_MODES))
    init: str = _key("content", Spec(
        str, "Starting image: the content image, uniform noise, or the style image.", choices=INITS))
    seed: int = _key(0, Spec(
        int, "Random seed (noise init, random weights); same seed and device give the same result.",
        minimum=0, maximum=2**32 - 1))
    device: str = _key("auto", Spec(
        str, "Where to compute: auto picks cuda, then mps, then cpu.", choices=DEVICES))
    precision: str = _key("auto", Spec(
        str, "Number format of the network's convolutions: auto picks bf16 where the hardware computes it "
        "natively (CPUs with AVX512_BF16 or AMX, CUDA GPUs from Ampere on) and fp32 elsewhere; fp16 needs a "
        "GPU. The image, the optimiser and the losses stay fp32.", choices=PRECISIONS))
    weights: str = _key("original", Spec(
        str, "VGG19 weights: original (Simonyan & Zisserman's, as in Gatys et al.; installed with nstcli), "
        "torchvision (PyTorch's retrained copy; downloads 548 MB once; alias imagenet), random (untrained; "
        "tests and demos), or a path to a .pth/.pt/.safetensors/.h5 file.",
        metavar="original|torchvision|random|PATH"))
    input_convention: str = _key("auto", Spec(
        str, "How the weights want their pixels: caffe (BGR, 0..255, minus the mean pixel) or torchvision "
        "(RGB, 0..1, ImageNet mean and std); auto takes it from the weights (only a converted file of unknown "
        "origin needs it).", choices=INPUT_CONVENTIONS))
    pooling: str = _key("max", Spec(
        str, "Pooling in VGG19: max (as trained) or avg (Gatys et al. found it gives smoother results).",
        choices=POOLINGS))
    padding: str = _key("zeros", Spec(
        str, "Padding of VGG19's first convolution: zeros (as trained) or replicate (the image's edge pixels; "
        "avoids bright borders).", choices=PADDINGS))
    max_memory: int | None = _key(None, Spec(
        str, "Memory a run may use, e.g. 6GB or 512MB; scales estimated to need more run in tiles. Empty means "
        "what the device has free, less a fifth for headroom.", optional=True, size=True, metavar="SIZE"))
    tile: int | None = _key(None, Spec(
        int, "Tile side in pixels (at least 32) for scales larger than it (Adam, tile by tile); empty chooses "
        "the largest that fits max_memory where a scale needs it; 0 never tiles.", optional=True, minimum=0,
        maximum=16384, metavar="PX"))
    checkpoint_every: int = _key(100, Spec(
        int, "Save an image every N steps into OUT_checkpoints/ next to the output; 0 disables.",
        minimum=0, maximum=MAX_STEPS))
    contact_sheet: bool = _key(False, Spec(
        bool, "After the run, write OUT_progress.png: the checkpoints side by side with their step numbers."))
    loss_curve: bool = _key(False, Spec(
        bool, "After the run, write OUT_loss.png: the content and style terms over the steps."))

    def replace(self, **changes: Any) -> "Config":
        return load_config(None, {**as_dict(self), **changes})

    def pick(self, settings: type[T]) -> T:
        """The keys a family reads, as its own settings type (a dataclass whose fields are named as keys)."""
        return settings(**{field.name: getattr(self, field.name) for field in dataclasses.fields(settings)})

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1.0 if self.optimizer == "lbfgs" else 0.02


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}
SPECS: dict[str, Spec] = {name: f.metadata["spec"] for name, f in FIELDS.items()}
# Keys that once were config keys and now belong elsewhere: named in the error instead of "unknown".
MOVED_KEYS = {
    "quiet": "'quiet' is no longer a config key: whether a command draws progress bars is the "
             "command's business; drop it from the file and give --quiet on the command line",
}


def as_dict(config: Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in FIELDS}


def _suggest(key: str) -> str:
    match = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.4)
    return f"; did you mean '{match[0]}'?" if match else f"; valid keys: {', '.join(FIELDS)}"


def coerce(key: str, value: Any, name: str | None = None) -> Any:
    """Turn a YAML value or a CLI string into the key's type, or raise ConfigError naming it.

    `name` is what the message calls the value: the key ('steps') unless given (a flag: --steps).
    """
    return value_of(SPECS[key], name or f"'{key}'", value)


def _check_together(values: dict[str, Any]) -> None:
    """Checks that involve more than one key."""
    betas = values.get("adam_betas")
    if betas is None or len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ConfigError(f"'adam_betas' must be two numbers in [0, 1), e.g. 0.9,0.999, got {show(betas)}")
    weights = values.get("style_layer_weights")
    if weights is not None and len(weights) != len(values["style_layers"]):
        raise ConfigError(
            f"'style_layer_weights' has {len(weights)} values but 'style_layers' has "
            f"{len(values['style_layers'])} layers; give one weight per style layer")
    rotations = values.get("style_rotations")
    if (not rotations or any(r not in STYLE_ROTATIONS for r in rotations)
            or len(set(rotations)) != len(rotations)):
        raise ConfigError(f"'style_rotations' must be distinct angles among {', '.join(map(str, STYLE_ROTATIONS))}, "
                          f"comma-separated, e.g. 0,90,180,270, got {show(rotations)}")
    values["style_rotations"] = tuple(int(r) for r in rotations)
    if values.get("pyramid_levels") and values.get("optimizer") != "adam":
        raise ConfigError("'pyramid_levels' needs 'optimizer' adam (L-BFGS here optimises the pixels "
                          "themselves); set optimizer to adam or pyramid_levels to 0")
    if values.get("contact_sheet") and not values.get("checkpoint_every"):
        # The sheet is made of the checkpoints: without any, it would silently not be written.
        raise ConfigError("'contact_sheet' shows the checkpoints, but 'checkpoint_every' is 0; "
                          "set checkpoint_every above 0 or drop contact_sheet")


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None, *,
                from_flags: bool = False, defaults: dict[str, Any] | None = None) -> Config:
    """Defaults < YAML file at `path` < `overrides` (the CLI flags actually given).

    `defaults` replaces some keys' defaults for one command (nst train's style weight).

    A bad value names where it came from: the key and the file for the YAML file; the flag
    (--steps) for overrides when `from_flags`, else the key.
    """
    values = {name: f.default for name, f in FIELDS.items()}
    values.update(defaults or {})
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((f"config file {path}", read_yaml(path)))
    if overrides:
        layers.append(("options", overrides))
    if path is not None and overrides and from_flags and "steps" in overrides and "first_steps" not in overrides:
        # --steps typed on the command line means the steps of this run, first scale included: a
        # recipe's first_steps (wasserstein.yaml's 1000) must not outlast it. --first-steps says otherwise.
        layers[0] = (layers[0][0], {key: value for key, value in layers[0][1].items()
                                    if not (isinstance(key, str) and key.replace("-", "_") == "first_steps")})
    for source, mapping in layers:
        in_file = source != "options"
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise ConfigError(f"{source}: key {show(key)} is not a name{_suggest(show(key))}")
            name = key.replace("-", "_")
            if name in MOVED_KEYS:
                raise ConfigError(f"{MOVED_KEYS[name]} ({source})")
            if name not in FIELDS:
                raise ConfigError(f"unknown config key {show(key)} in {source}{_suggest(name)}")
            if in_file:
                try:
                    values[name] = coerce(name, value)
                except ConfigError as exc:
                    raise ConfigError(f"{exc} (in {source})") from None
            else:
                values[name] = coerce(name, value, flag_name(name) if from_flags else None)
    _check_together(values)
    return Config(**values)


def flag_name(key: str) -> str:
    """The command-line flag of a config key: start_size -> --start-size."""
    return "--" + key.replace("_", "-")
