"""What a config key may hold: the choices of each key, and the Spec that says a key's type, help and range.

The CLI's options, the config's parsing and the reference tables in docs/ are all built from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# A trained network runs fp32 or under bf16 autocast: the fast networks offer no fp16.
FAST_PRECISIONS = ("auto", "fp32", "bf16")
POOLINGS = ("max", "avg")
COLOUR_MODES = ("none", "luminance", "histogram", "oklab")
STYLE_LOSSES = ("gram", "wasserstein", "neighbours")
CONTENT_LOSSES = ("features", "self-similarity")
# Quarter turns only: the style image is read turned, not resampled, so nothing is lost at the corners.
STYLE_ROTATIONS = (0, 90, 180, 270)
TV_STENCILS = ("forward", "ninepoint", "interior")
PADDINGS = ("zeros", "replicate")
SCALE_ANCHORS = ("start", "size")
INPUT_CONVENTIONS = ("auto", "caffe", "torchvision")
LOSS_NORMALIZATIONS = ("target", "none")
# Ten million steps is weeks of computing; the cap keeps absurd values (a 5000-digit integer from a
# config file) from reaching code that prints them.
MAX_STEPS = 10_000_000


@dataclass(frozen=True)
class Spec:
    """What one config key holds, how a value for it is checked, and how its flag is shown.

    `type` is int, float, bool or str; with `many` the value is a comma-separated list of them
    (str lists are VGG19 layer names). `optional` lets the key be empty (None). Bounds apply to
    numbers; `choices` turns a str into one of a fixed set (and holds an int to the listed ones).
    """

    type: type
    help: str
    optional: bool = False
    many: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False  # strictly above 0 (a minimum of 0 would allow 0 itself)
    below: bool = False  # strictly below `maximum`
    metavar: str | None = None  # the flag's placeholder, when the type's own is not telling enough
    size: bool = False  # a str key holding an amount of memory ("6GB"), kept as bytes (parse.py's parse_size)

    @property
    def expected(self) -> str:
        """What a value must be, for "'key' must be ..." messages."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.size:
            return "a size such as 6GB or 512MB" + (", or empty" if self.optional else "")
        if self.many:
            what = "VGG19 layer names" if self.type is str else "numbers"
            return f"a comma-separated list of {what}" + (", or empty" if self.optional else "")
        what = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.type]
        return what + (" or empty" if self.optional else "")

    @property
    def placeholder(self) -> str:
        """The flag's metavar in --help."""
        if self.metavar:
            return self.metavar
        if self.choices:
            return "|".join(self.choices)
        if self.many:
            return "LAYERS" if self.type is str else "X,Y,..."
        return {int: "N", float: "X", str: "TEXT"}[self.type]


def _key(default: Any, spec: Spec):
    return field(default=default, metadata={"spec": spec})
