"""Spatial control: which style paints where, and how much of the photo each part keeps.

Inputs (files of one run, so options and `stylize(masks=...)`, not config keys):
- style masks: one grayscale image per style image, white = this style applies, soft values allowed;
  or one colour-coded label image (`regions`) with one listed colour per style, in style order;
- source masks (optional, one per style): the part of each style image its statistics come from;
- a content mask: a weight map for the content term (white = full content weight, black = none).

Every mask is resized to the image of each scale (bilinear with antialiasing, so a hard edge becomes
a one-pixel ramp at coarse scales rather than an aliased staircase). At each pixel the style masks
are divided by their sum where it exceeds 1: overlapping masks share the pixel, while a pixel whose
masks sum to less than 1 keeps that fraction of style, so a soft edge into an unmasked region fades
out instead of jumping to full strength (dividing by the sum everywhere would turn a lone 0.1 into
1). Pixels no mask covers get the content term only.

Everything that can be wrong with the files is found by `check`, before the network is loaded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from nstcli.errors import ConfigError, ImageError, NSTWarning
from nstcli.stylize.mask_files import hex_colour, parse_colours, read_mask, read_regions

if TYPE_CHECKING:  # torch is imported where masks are decoded: the usage checks run before it loads
    import torch

    from nstcli.terms.builder import Guides

PathLike = str | os.PathLike


def resize_mask(mask: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """(H, W) -> shape (h, w): terms/guided.py's resize, imported when used (this module loads no torch)."""
    from nstcli.terms.guided import resize_mask as resize

    return resize(mask, shape)


def normalise(masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Divide the masks by their sum at every pixel where it exceeds 1 (see the module docstring)."""
    import torch

    stacked = torch.stack(list(masks))
    scale = stacked.sum(0).clamp_min(1.0)
    return list(stacked / scale)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


class SpatialControl:
    """The masks of one run: checked and decoded once, resized and turned into terms at every scale."""

    def __init__(self, style_masks: Sequence[PathLike] = (), *, regions: PathLike | None = None,
                 region_colors: str | Sequence[str] | None = None, source_masks: Sequence[PathLike] = (),
                 content_mask: PathLike | None = None):
        self.style_mask_paths = [Path(p) for p in style_masks]
        self.regions = Path(regions) if regions is not None else None
        self.region_colors = region_colors
        self.source_mask_paths = [Path(p) for p in source_masks]
        self.content_mask_path = Path(content_mask) if content_mask is not None else None
        self._style: list[torch.Tensor] | None = None
        self._source: list[torch.Tensor] | None = None
        self._content: torch.Tensor | None = None

    @property
    def guides_styles(self) -> bool:
        return bool(self.style_mask_paths) or self.regions is not None

    def files(self) -> list[tuple[str, Path]]:
        named = [("style mask", p) for p in self.style_mask_paths] + [("source mask", p) for p in self.source_mask_paths]
        if self.regions is not None:
            named.append(("style regions", self.regions))
        if self.content_mask_path is not None:
            named.append(("content mask", self.content_mask_path))
        return named

    def check_usage(self, style_paths: Sequence[PathLike], output: PathLike | None, *,
                    style_blend: Sequence[float] | None):
        """The mistakes that need no file read (ConfigError, exit 2); the listed region colours, if any.

        Needs no torch, so the command line answers these at once.
        """
        count = len(style_paths)
        if self.style_mask_paths and self.regions is not None:
            raise ConfigError("give either --style-mask files or one --style-regions image, not both")
        if self.region_colors is not None and self.regions is None:
            raise ConfigError("--region-colors needs --style-regions LABELS (the image the colours are in)")
        if self.regions is not None and self.region_colors is None:
            raise ConfigError("--style-regions needs --region-colors, one colour per style image in style "
                              "order, e.g. --region-colors '#ff0000,#00ff00'")
        if self.style_mask_paths and len(self.style_mask_paths) != count:
            raise ConfigError(f"{_count(count, 'style image')} but {_count(len(self.style_mask_paths), '--style-mask file')}"
                              "; give one mask per style image, in the same order")
        if self.source_mask_paths and not self.guides_styles:
            raise ConfigError("--style-source-mask needs --style-mask or --style-regions (where each style goes)")
        if self.source_mask_paths and len(self.source_mask_paths) != count:
            raise ConfigError(f"{_count(count, 'style image')} but {_count(len(self.source_mask_paths), '--style-source-mask file')}"
                              "; give one per style image, in the same order")
        if self.guides_styles and style_blend:
            raise ConfigError("'style_blend' does not apply with style masks: each style paints its own "
                              "region; drop --style-blend (grey levels in the masks mix styles)")
        if output is not None:
            target = Path(output).resolve()
            for what, path in self.files():
                if path.resolve() == target:
                    raise ConfigError(f"{what} {path} is also the output -o {output}; writing the result "
                                      "would destroy it: choose another output")
        if self.regions is None:
            return None
        colours = parse_colours(self.region_colors)
        if len(colours) != count:
            raise ConfigError(f"--region-colors lists {_count(len(colours), 'colour')} for "
                              f"{_count(count, 'style image')}; give one colour per style image, in the same order")
        return colours

    def check(self, style_paths: Sequence[PathLike], output: PathLike | None,
              content_size: tuple[int, int] | None = None, *, style_blend: Sequence[float] | None) -> None:
        """check_usage, then bad files (ImageError, exit 1); decode the masks.

        With `content_size` (width, height), a mask whose shape differs from the photo's is said
        (a warning): it is stretched to fit, which is rarely what was painted.
        """
        colours = self.check_usage(style_paths, output, style_blend=style_blend)
        names = [Path(p).name for p in style_paths]
        if self.regions is not None:
            masks = read_regions(self.regions, colours)
            for index, mask in enumerate(masks):
                if not bool(mask.any()):
                    raise ImageError(f"style regions {self.regions} has no pixel of colour "
                                     f"{hex_colour(colours[index])}: style {index + 1} ({names[index]}) would "
                                     "apply nowhere; paint its region or drop that style")
            self._style = masks
        elif self.style_mask_paths:
            self._style = [self._read_nonempty("style mask", path, f"style {i + 1} ({names[i]})")
                           for i, path in enumerate(self.style_mask_paths)]
        if self.source_mask_paths:
            self._source = [self._read_nonempty("source mask", path, f"style {i + 1} ({names[i]}) would have "
                                                "no statistics") for i, path in enumerate(self.source_mask_paths)]
        if self.content_mask_path is not None:
            self._content = self._read_nonempty("content mask", self.content_mask_path,
                                                "no pixel would keep the photo's content")
        if content_size is not None:
            self._warn_if_stretched(content_size)

    def _warn_if_stretched(self, content_size: tuple[int, int]) -> None:
        width, height = content_size
        files = []  # (what, path, one decoded mask of it)
        if self.regions is not None:
            files.append(("style regions", self.regions, self._style[0]))
        else:
            files += [("style mask", p, m) for p, m in zip(self.style_mask_paths, self._style or [])]
        if self._content is not None:
            files.append(("content mask", self.content_mask_path, self._content))
        for what, path, mask in files:
            mask_height, mask_width = mask.shape
            if abs(mask_width / mask_height - width / height) > 0.02 * width / height:
                warnings.warn(f"{what} {path} is {mask_width}x{mask_height} px but the content image is "
                              f"{width}x{height}: it is stretched to the content's shape", NSTWarning,
                              stacklevel=2)

    @staticmethod
    def _read_nonempty(what: str, path: Path, consequence: str) -> torch.Tensor:
        mask = read_mask(path, what)
        if not bool((mask > 0).any()):
            if what == "style mask":
                consequence += " would apply nowhere"
            raise ImageError(f"{what} {path} is black everywhere: {consequence}; paint white where it applies "
                             "(or leave the mask out)")
        return mask

    def guides(self, shape: Sequence[int], device: torch.device) -> Guides:
        """The masks of a scale whose image has `shape` (h, w), for terms/builder.py."""
        from nstcli.terms.builder import Guides

        if (self.guides_styles and self._style is None) or (self.content_mask_path and self._content is None):
            raise ValueError("SpatialControl.check() decodes the masks; call it before building terms")
        style = None
        if self._style is not None:
            style = [m.to(device) for m in normalise([resize_mask(m, shape) for m in self._style])]
        content = None if self._content is None else resize_mask(self._content, shape).to(device)
        return Guides(style, self._source, content)
