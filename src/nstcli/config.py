"""Every tunable, its default and its validation: the only place defaults are written.

Precedence: defaults < YAML file (`--config`) < CLI flags actually given. The CLI builds its options
from `FIELDS`, so a key added here is a flag and a YAML key at once. This module does not import torch,
so `nst --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nstcli.errors import ConfigError
from nstcli.vgg_layers import LAYER_NAMES, closest

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
DEVICES = ("auto", "cpu", "cuda", "mps")
POOLINGS = ("max", "avg")
COLOUR_MODES = ("none", "luminance", "histogram")
STYLE_LOSSES = ("gram", "wasserstein")
TV_STENCILS = ("forward", "ninepoint")
PADDINGS = ("zeros", "replicate")
SCALE_ANCHORS = ("start", "size")
# Ten million steps is weeks of computing; the cap keeps absurd values (a 5000-digit integer from a
# config file) from reaching code that prints them.
MAX_STEPS = 10_000_000


def _opt(help: str, *, kind: str, choices=None, minimum=None, maximum=None, positive=False, flag=None):
    """Field metadata: help text and the checks the loader applies."""
    return {
        "help": help,
        "kind": kind,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "positive": positive,
        "flag": flag,
    }


@dataclass(frozen=True)
class Config:
    """One stylize run. Defaults: see configs/default.yaml for where each value comes from."""

    size: int = field(default=384, metadata=_opt(
        "Longest side of the output in pixels (aspect ratio kept).", kind="int", minimum=16, maximum=16384))
    steps: int = field(default=150, metadata=_opt(
        "Optimisation steps per scale; each is one VGG19 forward and backward.", kind="int", minimum=0,
        maximum=MAX_STEPS))
    first_steps: int | None = field(default=None, metadata=_opt(
        "Steps at the first (coarsest) scale; empty means `steps`.", kind="int?", minimum=0, maximum=MAX_STEPS))
    optimizer: str = field(default="lbfgs", metadata=_opt(
        "Optimiser.", kind="choice", choices=OPTIMIZERS))
    adam_betas: tuple[float, ...] = field(default=(0.9, 0.999), metadata=_opt(
        "Adam's two moment decays, comma-separated (each in [0, 1)).", kind="floats?"))
    average: float = field(default=0.0, metadata=_opt(
        "Decay of the running average of the iterates that checkpoints and the output show (e.g. 0.99); "
        "0 shows the iterate itself.", kind="float", minimum=0.0, maximum=0.9999))
    lr: float | None = field(default=None, metadata=_opt(
        "Learning rate; empty means the optimiser's own default (L-BFGS 1.0, Adam 0.02).",
        kind="float?", positive=True))
    content_weight: float = field(default=1.0, metadata=_opt(
        "Weight alpha of the content loss.", kind="float", minimum=0.0))
    style_weight: float = field(default=1e3, metadata=_opt(
        "Weight beta of the style loss.", kind="float", minimum=0.0))
    tv_weight: float = field(default=0.0, metadata=_opt(
        "Weight of the total-variation (smoothness) loss.", kind="float", minimum=0.0))
    tv_stencil: str = field(default="forward", metadata=_opt(
        "Total variation from forward differences, or crowsonkb's nine-point stencil on the edge-replicated "
        "image.", kind="choice", choices=TV_STENCILS))
    style_loss: str = field(default="gram", metadata=_opt(
        "Style statistics matched: Gram matrices (Gatys et al.) or channel means and covariances under the "
        "Wasserstein-2 distance.", kind="choice", choices=STYLE_LOSSES))
    content_layers: tuple[str, ...] = field(default=("relu4_2",), metadata=_opt(
        "Layers whose feature maps define content, comma-separated.", kind="layers"))
    style_layers: tuple[str, ...] = field(
        default=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        metadata=_opt("Layers whose Gram matrices define style, comma-separated.", kind="layers"))
    style_layer_weights: tuple[float, ...] | None = field(default=None, metadata=_opt(
        "Per-style-layer weights, comma-separated, one per style layer; empty means equal.",
        kind="floats?"))
    style_blend: tuple[float, ...] | None = field(default=None, metadata=_opt(
        "Weights of several style images, comma-separated, one per style (e.g. 0.7,0.3); empty means equal.",
        kind="floats?"))
    style_scale: float = field(default=1.0, metadata=_opt(
        "Style image size relative to the output (longest sides): below 1 gives finer brush strokes, above 1 "
        "coarser ones.", kind="float", minimum=0.05, maximum=8.0))
    start_size: int | None = field(default=192, metadata=_opt(
        "Coarse-to-fine: optimise first at this longest side, then upsample by scale_factor up to size, "
        "running `steps` steps at each scale; none (or at least size) means a single scale.", kind="int?", minimum=16,
        maximum=16384))
    scale_factor: float = field(default=2.0, metadata=_opt(
        "Coarse-to-fine: how much each scale grows over the previous one.", kind="float", minimum=1.1,
        maximum=8.0))
    scales_from: str = field(default="start", metadata=_opt(
        "Coarse-to-fine: grow the scales from start_size by scale_factor (ending at size), or shrink them "
        "from size by scale_factor down to no less than start_size.", kind="choice", choices=SCALE_ANCHORS))
    preserve_color: str = field(default="none", metadata=_opt(
        "Keep the content's colours: luminance (transfer luminance only, Gatys et al. 2016) or histogram "
        "(recolour the style image to the content's colour statistics first).", kind="choice",
        choices=COLOUR_MODES))
    init: str = field(default="content", metadata=_opt(
        "Starting image: the content image, uniform noise, or the style image.", kind="choice", choices=INITS))
    seed: int = field(default=0, metadata=_opt(
        "Random seed (noise init, random weights); same seed and device give the same result.",
        kind="int", minimum=0, maximum=2**32 - 1))
    device: str = field(default="auto", metadata=_opt(
        "Where to compute: auto picks cuda, then mps, then cpu.", kind="choice", choices=DEVICES))
    weights: str = field(default="imagenet", metadata=_opt(
        "VGG19 weights: imagenet (download once, then cached), random (untrained; tests and demos), "
        "or a path to a .pth/.pt/.safetensors file.", kind="str"))
    pooling: str = field(default="max", metadata=_opt(
        "Pooling in VGG19: max (as trained) or avg (Gatys et al. found it gives smoother results).",
        kind="choice", choices=POOLINGS))
    padding: str = field(default="zeros", metadata=_opt(
        "Padding of VGG19's first convolution: zeros (as trained) or replicate (the image's edge pixels; "
        "avoids bright borders).", kind="choice", choices=PADDINGS))
    checkpoint_every: int = field(default=100, metadata=_opt(
        "Save an image every N steps into OUT_checkpoints/ next to the output; 0 disables.",
        kind="int", minimum=0, maximum=MAX_STEPS))
    contact_sheet: bool = field(default=False, metadata=_opt(
        "After the run, write OUT_progress.png: the checkpoints side by side with their step numbers.",
        kind="bool"))
    loss_curve: bool = field(default=False, metadata=_opt(
        "After the run, write OUT_loss.png: the content and style terms over the steps.", kind="bool"))
    quiet: bool = field(default=False, metadata=_opt(
        "No progress bar.", kind="bool"))

    def replace(self, **changes: Any) -> "Config":
        return load_config(None, {**as_dict(self), **changes})

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1.0 if self.optimizer == "lbfgs" else 0.02


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}


def as_dict(config: Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in FIELDS}


# Values are echoed in error messages; a config file from elsewhere may hold megabytes or deeply
# nested (aliased) lists, so show a bounded preview.
class _Preview(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        # repr() itself refuses integers of more than 4300 digits (a ValueError); count them instead.
        if x.bit_length() > 256:
            digits = int(math.log10(abs(x))) + 1  # the float log can be one too high near 10**k
            if 10 ** (digits - 1) > abs(x):
                digits -= 1
            return f"<{'-' if x < 0 else ''}{digits}-digit integer>"
        return super().repr_int(x, level)


_PREVIEW = _Preview()  # attributes, not keywords: Repr() takes none before Python 3.12
_PREVIEW.maxstring = _PREVIEW.maxother = 60
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 6
_PREVIEW.maxlevel = 2
# A config is a few lines; anything much larger is not one (and would be slow to parse).
MAX_CONFIG_BYTES = 1_000_000


def _show(value: Any) -> str:
    return _PREVIEW.repr(value)


def _suggest(key: str) -> str:
    match = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.4)
    return f"; did you mean '{match[0]}'?" if match else f"; valid keys: {', '.join(FIELDS)}"


def _split(value: Any) -> list:
    if isinstance(value, str):
        parts = [part.strip() for part in value.strip().rstrip(",").split(",")]
        if any(not part for part in parts):  # "0.5,,0.5": a missing value, not two values
            raise ValueError(value)
        return parts
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError


def _to_float(value: Any) -> float:
    # YAML reads "1e3" as a string (YAML 1.1 wants "1.0e+3"); accept what a person would write.
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise TypeError


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "float?": "a number or empty",
    "int?": "an integer or empty",
    "str": "a string",
    "bool": "true or false",
    "choice": "one of",
    "layers": "a comma-separated list of VGG19 layer names",
    "floats?": "a comma-separated list of numbers, or empty",
}


def coerce(key: str, value: Any) -> Any:
    """Turn a YAML value or a CLI string into the field's type, or raise ConfigError naming the key."""
    meta = FIELDS[key].metadata
    kind = meta["kind"]
    try:
        if kind.endswith("?") and (value is None or (isinstance(value, str) and value.strip() in ("", "none", "null"))):
            return None
        if kind in ("int", "int?"):
            out = _to_int(value)
        elif kind in ("float", "float?"):
            out = _to_float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ConfigError(f"'{key}' must be a finite number, got {_show(value)}")
        elif kind == "bool":
            out = _to_bool(value)
        elif kind == "str":
            if not isinstance(value, str) or not value.strip() or "\0" in value:
                raise TypeError
            out = value.strip()
        elif kind == "choice":
            if not isinstance(value, str):
                raise TypeError
            out = value.strip().lower()
            if out not in meta["choices"]:
                hint = difflib.get_close_matches(out, meta["choices"], n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else ""
                raise ConfigError(
                    f"'{key}' must be one of {', '.join(meta['choices'])}, got {_show(value)}{extra}")
        elif kind == "layers":
            names = _split(value)
            if not all(isinstance(v, str) for v in names):
                raise TypeError
            out = tuple(v.strip() for v in names)
            if not out:
                raise ConfigError(f"'{key}' needs at least one layer name, e.g. relu4_2")
            for name in out:
                if name not in LAYER_NAMES:
                    hint = closest(name, LAYER_NAMES)
                    extra = f"did you mean '{hint}'? " if hint else ""
                    raise ConfigError(
                        f"'{key}' has unknown VGG19 layer {_show(name)}; {extra}valid layers: "
                        f"{', '.join(LAYER_NAMES)}")
            if len(set(out)) != len(out):
                raise ConfigError(f"'{key}' lists a layer twice: {', '.join(out)}")
        elif kind == "floats?":
            out = tuple(_to_float(v) for v in _split(value))
            if any(not math.isfinite(v) or v < 0 for v in out):
                raise ConfigError(f"'{key}' values must be finite, non-negative numbers, got {_show(value)}")
        else:  # pragma: no cover - a new kind without a coercer is a programming error
            raise AssertionError(kind)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float() of a huge YAML integer
        expected = _EXPECTED[kind]
        if kind == "choice":
            expected += " " + ", ".join(meta["choices"])
        raise ConfigError(f"'{key}' must be {expected}, got {_show(value)}") from None
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        if meta["minimum"] is not None and out < meta["minimum"]:
            raise ConfigError(f"'{key}' must be at least {meta['minimum']}, got {_show(value)}")
        if meta["maximum"] is not None and out > meta["maximum"]:
            raise ConfigError(f"'{key}' must be at most {meta['maximum']}, got {_show(value)}")
        if meta["positive"] and out <= 0:
            raise ConfigError(f"'{key}' must be greater than 0, got {_show(value)}")
    return out


def _check_together(values: dict[str, Any]) -> None:
    """Checks that involve more than one key."""
    betas = values.get("adam_betas")
    if betas is None or len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ConfigError(f"'adam_betas' must be two numbers in [0, 1), e.g. 0.9,0.999, got {_show(betas)}")
    weights = values.get("style_layer_weights")
    if weights is not None and len(weights) != len(values["style_layers"]):
        raise ConfigError(
            f"'style_layer_weights' has {len(weights)} values but 'style_layers' has "
            f"{len(values['style_layers'])} layers; give one weight per style layer")


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file: a YAML mapping of keys to values. Only plain YAML (safe_load)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; check the path given to --config")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a .yaml file")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file; give a .yaml file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1_000_000} MB; a config "
                          "file is a few 'key: value' lines")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: editors on Windows start files with a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    except Exception as exc:
        # PyYAML's constructors let Python's own errors through for values they half-parsed: a date
        # like 2020-13-45, an integer beyond 4300 digits, brackets nested thousands deep.
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"config file {path} is not valid YAML: {reason}") from None
    if data is None:
        raise ConfigError(f"config file {path} is empty; write 'key: value' lines, e.g. 'steps: 300'")
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must be a mapping of keys to values (e.g. 'steps: 300'), "
            f"not a {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults < YAML file at `path` < `overrides` (the CLI flags actually given)."""
    values = {name: f.default for name, f in FIELDS.items()}
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((f"config file {path}", read_yaml(path)))
    if overrides:
        layers.append(("options", overrides))
    for source, mapping in layers:
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise ConfigError(f"{source}: key {_show(key)} is not a name{_suggest(_show(key))}")
            name = key.replace("-", "_")
            if name not in FIELDS:
                raise ConfigError(f"unknown config key {_show(key)} in {source}{_suggest(name)}")
            values[name] = coerce(name, value)
    _check_together(values)
    return Config(**values)


# `nst video`'s own settings: flags of that command only, not config keys (no other command has
# frames). Chosen by measurement: benchmarks/video.py, table in benchmarks/README.md.
VIDEO_FRAME_STEPS = 50
VIDEO_TEMPORAL_WEIGHT = 100.0
