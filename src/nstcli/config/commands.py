"""The settings of the commands that take more than stylize's keys: nst train, nst apply, nst video.

Declared as `Config` is (config/fields.py), one `Spec` per field, so each command's flags (their
type, range, default and help), the library's checks of a value and the docs' --help blocks come
from here. They are flags of their command only, not config keys: no other command has network
updates, a trained model's strength or frames. A library caller builds one with keywords (defaults
for the rest) and `checked` refuses a value out of its range, named by its flag.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

from nstcli.config.fields import SPECS as CONFIG_SPECS
from nstcli.config.parse import value_of
from nstcli.config.specs import DEVICES, FAST_PRECISIONS, MAX_STEPS, Spec, _key

T = TypeVar("T")

# The width choices of a transformation network's first layer (fast/network.py checks the rest).
NETWORK_WIDTHS = ("8", "16", "24", "32", "48", "64")


@dataclass(frozen=True)
class TrainSettings:
    """What `nst train` takes besides the loss keys it shares with stylize."""

    steps: int = _key(2000, Spec(int, "Network updates (each on one batch of crops).", minimum=1, maximum=MAX_STEPS))
    batch_size: int = _key(4, Spec(int, "Crops per update.", minimum=1, maximum=256))
    crop_size: int = _key(256, Spec(int, "Side of the square random crops, px.", minimum=32, maximum=2048))
    lr: float = _key(1e-3, Spec(float, "Adam's learning rate on the network's weights.", positive=True))
    style_size: int | None = _key(None, Spec(
        int, "Longest side the style image is seen at (default 1.5 x --crop-size): smaller gives larger brush "
        "strokes.", optional=True, minimum=32, maximum=4096))
    width: int = _key(32, Spec(
        int, "Channels of the network's first layer (Johnson et al.: 32); 16 runs about 3x faster.",
        choices=NETWORK_WIDTHS))
    blocks: int = _key(5, Spec(int, "Residual blocks.", minimum=1, maximum=10))
    precision: str = _key("auto", Spec(
        str, "auto: bf16 where the hardware computes it natively (VGG19 and the network's convolutions; weights, "
        "Adam and the loss sums stay fp32), else fp32.", choices=FAST_PRECISIONS))
    checkpoint_every: int = _key(200, Spec(
        int, "Save a resumable checkpoint every N steps into MODEL_training/ (also on Ctrl-C); 0: only on Ctrl-C.",
        minimum=0, maximum=MAX_STEPS))
    preview_every: int = _key(100, Spec(
        int, "Write MODEL_training/preview_STEP.png every N steps; 0 disables.", minimum=0, maximum=MAX_STEPS))


# Config keys whose default differs for nst train: a network cannot start from the photo as
# stylize's pixels do, so it needs less style weight to keep the photo's content.
TRAIN_CONFIG_DEFAULTS = {"style_weight": 10.0}


@dataclass(frozen=True)
class ApplySettings:
    """What a trained network's pass over an image reads (nst apply; nst video --model adds `blend`)."""

    size: int | None = _key(None, Spec(
        int, "Longest side of the output, px (default: the input's own size).", optional=True, minimum=16,
        maximum=16384))
    strength: float = _key(1.0, Spec(
        float, "Blend with the photo: 1 is the network's output, 0 the photo.", minimum=0, maximum=1))
    preserve_color: bool = _key(False, Spec(bool, "Keep the photo's colours (luminance from the result)."))
    tile: int | None = _key(None, Spec(
        int, "Run images larger than PX in overlapping tiles; default: only when memory requires; 0 never.",
        optional=True, minimum=0, maximum=16384, metavar="PX"))
    precision: str = _key("auto", Spec(
        str, "bf16 autocasts the convolutions; auto picks it where the hardware computes it natively (CPUs with "
        "AVX512_BF16 or AMX, recent GPUs), else fp32.", choices=FAST_PRECISIONS))
    device: str = _key("auto", Spec(str, CONFIG_SPECS["device"].help, choices=DEVICES))


@dataclass(frozen=True)
class VideoSettings:
    """`nst video`'s own settings beside stylize's keys: how later frames are optimised (or, with a trained
    network, blended). Chosen by measurement on the original VGG19: benchmarks/video/video.py, table in
    benchmarks/README.md. The temporal term is a mean squared error in [0, 1] pixels (about 5e-4 between
    frames) against a normalised objective of order 0.5, hence a weight of order 100."""

    blend: float = _key(0.6, Spec(
        float, "With --model: how much of the previous frame, carried along the flow, each frame keeps where the "
        "flow is reliable (default 0.6; 0 applies the network frame by frame).", minimum=0, maximum=1,
        below=True, metavar="X"))
    frame_steps: int = _key(50, Spec(
        int, "Steps for every frame after the first, which starts from the previous one (the first gets "
        "--steps, coarse-to-fine).", minimum=0, maximum=MAX_STEPS, metavar="N"))
    temporal_weight: float = _key(100.0, Spec(
        float, "Weight of the temporal term keeping each frame close to the previous one carried along the "
        "motion; 0 turns it off.", minimum=0.0, metavar="X"))


def specs(settings: type) -> dict[str, Spec]:
    """Each field's Spec, by name."""
    return {field.name: field.metadata["spec"] for field in dataclasses.fields(settings)}


def checked(settings: T) -> T:
    """`settings` with every value converted and range-checked by its Spec (ConfigError naming the flag)."""
    values = {name: value_of(spec, "--" + name.replace("_", "-"), getattr(settings, name))
              for name, spec in specs(type(settings)).items()}
    return type(settings)(**values)
