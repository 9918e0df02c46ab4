"""Mask files read and checked: grayscale masks, colour-coded label images, a content image's mask in a folder.

stylize/masks.py turns what these return into each scale's masks; every message names the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageColor, ImageOps

from nstcli.errors import ConfigError, ImageError
from nstcli.image.io import open_image, pil_to_tensor

if TYPE_CHECKING:  # torch is imported where masks are decoded: the usage checks run before it loads
    import torch

PathLike = str | os.PathLike
# How far (per 0-255 channel) a label pixel may be from a listed colour and still count as it: JPEG
# compression moves flat colours by a few levels; anti-aliased edges between colours are further off.
COLOUR_TOLERANCE = 24
# A mask folder's file for a content image: the same stem with any of these extensions.
MASK_EXTENSIONS = (".png", ".bmp", ".gif", ".jpeg", ".jpg", ".tif", ".tiff", ".webp")


def read_mask(path: PathLike, what: str) -> torch.Tensor:
    """A grayscale mask file as an (H, W) float tensor in [0, 1]; transparent pixels count as black.

    `what` names the file in errors ("style mask", "content mask", ...).
    """
    import torch

    try:
        open_image(path)  # every check and message for unreadable files, in one place
    except ImageError as exc:
        text = str(exc)
        raise ImageError(f"{what} {text[len('image '):]}" if text.startswith("image ") else f"{what} {text}") from None
    with Image.open(path) as image:
        image.seek(0)
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        gray = image.convert("RGB").convert("L")
    data = torch.frombuffer(bytearray(gray.tobytes()), dtype=torch.uint8)
    return data.view(gray.height, gray.width).float().div_(255)


def parse_colours(text: str | Sequence[str]) -> list[tuple[int, int, int]]:
    """'#ff0000,#00ff00' (or names: 'red,green') -> RGB triples; ConfigError naming a bad one."""
    parts = [part.strip() for part in text.split(",")] if isinstance(text, str) else [str(p).strip() for p in text]
    colours = []
    for part in parts:
        try:
            colours.append(ImageColor.getrgb(part)[:3])
        except ValueError:
            raise ConfigError(f"--region-colors: {part!r} is not a colour; give #rrggbb values or names, "
                              "e.g. --region-colors '#ff0000,#00ff00'") from None
    # One colour listed for two styles would give both the same region: the label image cannot say
    # which one a pixel of it means, so the later style would silently get no pixel at all.
    for later, colour in enumerate(colours):
        earlier = colours.index(colour)
        if earlier < later:
            same = (f"{parts[earlier]!r}" if parts[earlier] == parts[later]
                    else f"{parts[earlier]!r} and {parts[later]!r}")
            raise ConfigError(f"--region-colors lists the colour {hex_colour(colour)} ({same}) twice, for styles "
                              f"{earlier + 1} and {later + 1}; give each style image its own colour")
    return colours


def hex_colour(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def read_regions(path: PathLike, colours: Sequence[tuple[int, int, int]]) -> list[torch.Tensor]:
    """A label image -> one (H, W) 0/1 mask per listed colour; ImageError for a colour not listed."""
    import torch

    try:
        image = open_image(path)
    except ImageError as exc:
        text = str(exc)
        raise ImageError(f"style regions {text[len('image '):]}" if text.startswith("image ") else str(exc)) from None
    pixels = pil_to_tensor(image)[0].mul(255).round().permute(1, 2, 0)  # (H, W, 3)
    listed = torch.tensor(colours, dtype=pixels.dtype)  # (S, 3)
    distance = (pixels[:, :, None, :] - listed).abs().amax(-1)  # (H, W, S), per-channel (Chebyshev)
    nearest, label = distance.min(-1)
    unlisted = nearest > COLOUR_TOLERANCE
    if bool(unlisted.any()):
        y, x = (int(i) for i in unlisted.nonzero()[0])
        colour = hex_colour(int(v) for v in pixels[y, x])
        raise ImageError(
            f"style regions {path} has colour {colour} (at x={x}, y={y}; {int(unlisted.sum())} pixels off "
            f"every listed colour) that --region-colors does not list "
            f"({','.join(hex_colour(c) for c in colours)}); list it or repaint those pixels")
    return [(label == index).float() for index in range(len(colours))]


def find_mask(folder: PathLike, sub, stem: str) -> Path | None:
    """The mask for a content image in a mask folder: folder/sub/stem.<image extension>, if there is one."""
    where = Path(folder) / Path(*sub.parts) if sub.parts else Path(folder)
    for ext in MASK_EXTENSIONS:
        for candidate in (where / f"{stem}{ext}", where / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None
