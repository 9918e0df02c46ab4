"""Style images: opened once, blended by weight, their style term built once per network and size."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from nstcli.errors import ConfigError
from nstcli.network.features import VGGFeatures
from nstcli.image.io import open_image, pil_to_tensor, prepare, style_side
from nstcli.terms.builder import Styles
from nstcli.terms.objective import style_term_for
from nstcli.terms.settings import LossSettings
from nstcli.stylize.sizes import at_least
from nstcli.terms.base import Term

PathLike = str | os.PathLike


def blend_weights(count: int, blend: Sequence[float] | None) -> list[float]:
    """One weight per style image (config.style_blend, already checked to be finite and >= 0)."""
    if blend is None:
        return [1.0 / count] * count
    values = list(blend)
    if len(values) != count:
        raise ConfigError(f"'style_blend' has {len(values)} weights for {count} style images; "
                          "give one weight per style image")
    if sum(values) <= 0:
        raise ConfigError("'style_blend' weights must not all be 0")
    return values


class PreparedStyle:
    """Style images opened once, their style term cached per network, size and style settings.

    `stylize` accepts one in place of style paths. Without colour preservation the targets depend on
    the content image only through the size the style is resized to, so a batch (or a video) builds
    one per style and reuses it for every content image instead of recomputing the targets per item.
    """

    def __init__(self, styles: PathLike | Sequence[PathLike], style_blend: Sequence[float] | None = None):
        paths = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
        if not paths:
            raise ConfigError("give at least one style image")
        self.paths = [Path(path) for path in paths]
        self.blend = blend_weights(len(self.paths), style_blend)
        self._images = None
        self._terms: dict = {}

    def images(self) -> list:
        """The decoded style images (opened on first use; raises ImageError naming a bad file)."""
        if self._images is None:
            self._images = [open_image(path) for path in self.paths]
        return self._images

    def tensors(self, size: int, needed: int, device: torch.device) -> list[torch.Tensor]:
        return [prepare(pil_to_tensor(at_least(image, style_side(image.size, size), needed)), device)
                for image in self.images()]

    def term(self, loss: LossSettings, network: VGGFeatures, size: int, needed: int, device: torch.device) -> Term:
        """The style term at `size`, computed once per network, size and the settings it depends on."""
        # The key holds the network object itself, so it stays alive and cannot be mistaken for another.
        key = (network, size, needed, str(device), loss.style_loss, loss.style_layers, loss.style_layer_weights,
               loss.style_weight, loss.loss_normalization, loss.style_rotations, loss.neighbour_content_mix,
               loss.neighbour_refresh)
        if key not in self._terms:
            images, blend = rotated(self.tensors(size, needed, device), self.blend, loss.style_rotations)
            self._terms[key] = style_term_for(loss, network, images, blend)
        return self._terms[key]

    def at(self, loss: LossSettings, network: VGGFeatures, size: int, needed: int, device: torch.device) -> Styles:
        """These styles at `size`, as terms/builder.py takes them: made on demand (each turned by every one
        of `style_rotations`), their term cached."""
        blend = rotated_blend(self.blend, loss.style_rotations)
        return Styles(lambda: rotated(self.tensors(size, needed, device), self.blend, loss.style_rotations)[0], blend,
                      lambda: self.term(loss, network, size, needed, device))


def rotated_blend(blend: Sequence[float], rotations: Sequence[int]) -> list[float]:
    """Each style's blend weight shared equally among its turns, in rotated()'s order."""
    return [share / len(rotations) for share in blend for _ in rotations]


def rotated(images: Sequence[torch.Tensor], blend: Sequence[float],
            rotations: Sequence[int]) -> tuple[list[torch.Tensor], list[float]]:
    """(images, blend) with every style image also turned by each angle (degrees, counter-clockwise).

    A painting's strokes run in a few directions; reading it turned offers the objective the same
    strokes in the other directions too (NNST reads 90, 180 and 270 degrees besides), so a photo's
    edges find strokes that follow them. Quarter turns lose no pixel.
    """
    if tuple(rotations) == (0,):
        return list(images), list(blend)
    out = [torch.rot90(image, angle // 90, dims=(-2, -1)).contiguous() if angle else image
           for image in images for angle in rotations]
    return out, rotated_blend(blend, rotations)
