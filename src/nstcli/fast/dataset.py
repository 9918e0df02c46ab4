"""A folder of photos as an endless, reproducible stream of random square crops.

- Found recursively; hidden files and folders skipped; only the documented input formats (by
  extension, then by the file's own header: a text file named .jpg is not a photo). A file that
  cannot be read is reported (a `Warning:` line) and skipped, never a reason to stop.
- Decoded on first use and kept, shrunk so the short side is `CACHE_FACTOR` x the crop size, in a
  bounded cache: a folder of thousands of photos does not have to fit in memory, and a small one is
  decoded once.
- Each crop takes a random square of side between the crop size and the image's short side,
  resizes it to the crop size, and flips it left-right half the time. Every random choice comes
  from one `torch.Generator`, whose state a checkpoint saves: a resumed run draws the same crops.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from nstcli import paths
from nstcli.jobs.inputs import IMAGE_EXTENSIONS
from nstcli.errors import ConfigError, ImageError, NSTWarning, first_line
from nstcli.image.io import INPUT_FORMATS, open_image, pil_to_tensor, register_formats

MIN_IMAGES = 4
CACHE_FACTOR = 1.5
CACHE_IMAGES = 512


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder` (recursively, sorted), each file's header checked; bad ones warned about."""
    folder = Path(folder)
    kind = paths.kind(folder)
    if kind != paths.FOLDER:
        what = "does not exist" if kind == paths.MISSING else f"is {kind}, not a folder"
        raise ConfigError(f"--data {folder} {what}; give a folder of photos")
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            problem = _header_problem(path)
            if problem:
                warnings.warn(f"skipping {path}: {problem}", NSTWarning, stacklevel=2)
            else:
                found.append(path)
    return found


def _header_problem(path: Path) -> str | None:
    try:
        if not path.is_file():
            return "not a regular file"
        if path.stat().st_size == 0:
            return "empty (0 bytes)"
        register_formats()
        with Image.open(path, formats=INPUT_FORMATS) as image:
            image.size  # noqa: B018 - reading the header is the check
    except Exception as exc:  # Pillow raises many kinds for hostile files; all mean "not a photo"
        return f"not a readable image ({first_line(exc, 100)})"
    return None


def check_count(found: list[Path], folder, needed: int = MIN_IMAGES) -> None:
    if len(found) < needed:
        raise ConfigError(f"--data {folder}: found {len(found)} images (of {', '.join(IMAGE_EXTENSIONS)}, "
                          f"searched recursively); training needs at least {needed}: add photos")


class Crops:
    """Random square crops of `crop` px from `files`, drawn with `generator`."""

    def __init__(self, files: list[Path], crop: int, generator: torch.Generator):
        self.files = list(files)
        self.crop = crop
        self.generator = generator
        self.cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.bad: set[int] = set()

    def _image(self, index: int) -> torch.Tensor | None:
        if index in self.cache:
            self.cache.move_to_end(index)
            return self.cache[index]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = open_image(self.files[index])
        except ImageError as exc:
            warnings.warn(f"skipping {self.files[index]}: {exc}", NSTWarning, stacklevel=3)
            self.bad.add(index)
            return None
        keep = round(self.crop * CACHE_FACTOR)
        short = min(image.size)
        if short > keep:
            scale = keep / short
            image = image.resize((max(keep, round(image.width * scale)), max(keep, round(image.height * scale))),
                                 Image.Resampling.LANCZOS)
        tensor = pil_to_tensor(image)[0]
        self.cache[index] = tensor
        if len(self.cache) > CACHE_IMAGES:
            self.cache.popitem(last=False)
        return tensor

    def _draw(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def sample(self) -> torch.Tensor:
        """One (3, crop, crop) crop in [0, 1]."""
        for _ in range(len(self.files) + 1):
            index = self._draw(len(self.files))
            image = None if index in self.bad else self._image(index)
            if image is not None:
                break
            # The draw is still made, so the sequence of crops stays the same whatever the cache holds.
        else:
            raise ImageError("none of the training images can be read any more")
        _, height, width = image.shape
        short = min(height, width)
        side = self.crop if short <= self.crop else self.crop + self._draw(short - self.crop + 1)
        side = min(side, short)
        top, left = self._draw(height - side + 1), self._draw(width - side + 1)
        flip = self._draw(2)
        piece = image[:, top:top + side, left:left + side].unsqueeze(0)
        if side != self.crop:
            piece = F.interpolate(piece, size=(self.crop, self.crop), mode="bilinear", align_corners=False,
                                  antialias=side > self.crop).clamp_(0, 1)
        if flip:
            piece = piece.flip(-1)
        return piece[0]

    def batch(self, size: int) -> torch.Tensor:
        return torch.stack([self.sample() for _ in range(size)])
