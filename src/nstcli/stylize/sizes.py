"""How large each image is at each scale: the coarse-to-fine schedule and the layers' minimum."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from PIL import Image

from nstcli.config.fields import SPECS
from nstcli.errors import ImageError
from nstcli.image.io import resize_longest


@dataclass(frozen=True)
class ScaleSettings:
    """The keys the coarse-to-fine schedule reads (named as in the config)."""

    size: int
    start_size: int | None
    scale_factor: float
    scales_from: str  # "start" or "size"
    steps: int
    first_steps: int | None
    taper_from: int | None
    style_scale: float


def scale_sizes(scales: ScaleSettings) -> list[int]:
    """Longest side of every scale, smallest first, ending at `size`.

    scales_from "start": start_size, start_size * factor, ... up to size (the last step may be
    smaller). scales_from "size": size, size / factor, size / factor^2, ... down to no less than
    start_size, each rounded from size itself (crowsonkb/style-transfer-pytorch's schedule with
    factor sqrt(2) and start 128), so every scale is an exact fraction of the output.
    """
    if scales.start_size is None or scales.start_size >= scales.size:
        return [scales.size]
    if scales.scales_from == "size":
        sizes, k = set(), 0
        while (current := round(scales.size / scales.scale_factor**k)) >= scales.start_size:
            sizes.add(current)
            k += 1
        return sorted(sizes)
    sizes, current = [], float(scales.start_size)
    while round(current) < scales.size:
        sizes.append(round(current))
        current *= scales.scale_factor
    return sizes + [scales.size]


def steps_per_scale(scales: ScaleSettings, sizes: list[int]) -> list[int]:
    """`first_steps` (or `steps`) at the first scale, `steps` at every later one, tapered above taper_from.

    A later scale of longest side s > taper_from runs round(steps * taper_from / s) steps (at least 1
    when steps is not 0): its steps cost about (s / taper_from)^2 times as much, and what it adds is
    detail, not the painting's large strokes, which the coarser scales already made. The first scale
    is never tapered: nothing before it has painted anything (so a single-scale run is unchanged).
    """
    first = scales.steps if scales.first_steps is None else scales.first_steps

    def later(size: int) -> int:
        if scales.taper_from is None or size <= scales.taper_from or scales.steps == 0:
            return scales.steps
        return max(1, round(scales.steps * scales.taper_from / size))

    return [first, *map(later, sizes[1:])][:len(sizes)]


def fit_to_size(path: str | os.PathLike, image: Image.Image, longest: int, needed: int, scale: float = 1.0):
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
    largest = SPECS["size"].maximum
    hint = (f"use --size {enough} or more, or crop it" if enough <= largest
            else "crop it to a less elongated shape")
    size = round(longest / scale)
    raise ImageError(
        f"image {path} would be {resized.size[0]}x{resized.size[1]} px at --size {size}; the layers "
        f"used need at least {needed} px on the short side: {hint}")


def at_least(image: Image.Image, longest: int, needed: int) -> Image.Image:
    """Resize to `longest`, but never below `needed` on the short side (coarse scales of a style)."""
    resized = resize_longest(image, longest)
    if min(resized.size) >= needed:
        return resized
    factor = needed / min(image.size)
    return image.resize((max(needed, round(image.width * factor)), max(needed, round(image.height * factor))),
                        Image.Resampling.LANCZOS)
