"""A tiled scale seen whole: terms read a tile's interior, targets are computed one tile at a time.

- The network sees a tile with a margin of context around it, and the terms read only the features
  of the tile's interior (`Interior`): its border is no border for the network.
- The content targets are the whole content image's features, computed once per scale tile by tile
  (`tiled_features`), and cut per tile by the content term's `at(tile)`.
- Style statistics do not depend on where a tile is: the scale's style term is used as it is (its
  Gram matrices summed tile by tile by `tiled_grams` when even one forward pass over the style image
  would not fit). `TileWindow` hands these to terms/builder.py, which makes the terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from nstcli.image.io import fit_longest, style_side
from nstcli.network import memory
from nstcli.network.features import VGGFeatures
from nstcli.terms.base import Features, Term
from nstcli.terms.gram import blend_grams
from nstcli.terms.objective import features_of
from nstcli.tiling.grid import Tile, crop, layout


class Interior(Term):
    """A term evaluated on a tile's interior only: its features in each layer and its pixels."""

    def __init__(self, term: Term, tile: Tile, origin: tuple[int, int]):
        self.term = term
        self.name = term.name
        self.layers = term.layers
        self.boxes = tile.boxes(term.layers)
        y0, y1, x0, x1 = tile.interior
        self.pixels = (y0 - origin[0], y1 - origin[0], x0 - origin[1], x1 - origin[1])

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        inner = {name: crop(features[name], self.boxes[name]) for name in self.layers}
        return self.term(inner, crop(image, self.pixels))


@torch.no_grad()
def tiled_features(network: VGGFeatures, image: torch.Tensor, layers: Sequence[str], tile: int,
                   align: int, visit: Callable | None = None) -> Features:
    """The whole image's feature maps at `layers`, one tile (with context) at a time; `visit(tile,
    features)` instead receives every tile's own part (for statistics summed over positions)."""
    height, width = image.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    for piece in layout((height, width), tile, align):
        features = features_of(network, crop(image, piece.crop))
        if visit is not None:
            visit({name: crop(features[name], box) for name, box in piece.boxes(layers, own=True).items()})
            continue
        for name in layers:
            if name not in out:
                factor = 2 ** memory.pooling_depth(name)
                channels = features[name].shape[1]
                # NaN until written: a cell no tile wrote would show, not pass for a target.
                # Made channels_last, not converted: a conversion would hold two copies at once.
                out[name] = torch.empty((1, channels, height // factor, width // factor), dtype=features[name].dtype,
                                        device=features[name].device,
                                        memory_format=torch.channels_last).fill_(math.nan)
            crop(out[name], piece.cells(name, own=True)).copy_(crop(features[name], piece.boxes([name], True)[name]))
    # A sum, not isnan(): no mask as large as the maps (a quarter of their memory) at these sizes.
    assert not any(value.sum().isnan() for value in out.values()), "tiles left feature cells unwritten"
    return out


@torch.no_grad()
def tiled_grams(network: VGGFeatures, styles: Sequence[torch.Tensor], blend: Sequence[float],
                layers: Sequence[str], tile: int, align: int) -> dict[str, torch.Tensor]:
    """The blended Gram matrices of `styles` (as terms/gram.blended_grams), summed tile by tile."""

    def grams_of(style: torch.Tensor) -> dict[str, torch.Tensor]:
        sums: dict[str, torch.Tensor] = {}

        def visit(features):
            for name, value in features.items():
                flat = value.reshape(value.shape[0], value.shape[1], -1)
                product = torch.bmm(flat, flat.transpose(1, 2))
                sums[name] = product if name not in sums else sums[name] + product

        tiled_features(network, style, layers, tile, align, visit)
        height, width = style.shape[-2:]
        cells = {name: 2 ** memory.pooling_depth(name) for name in layers}  # pixels per feature cell, each way
        return {name: sums[name] / ((height // cells[name]) * (width // cells[name])) for name in layers}

    return blend_grams(grams_of, styles, blend, layers)


class TileWindow:
    """terms/builder.py's `Window` for one tiled scale: whole-image features and Gram matrices, tile by tile."""

    def __init__(self, network: VGGFeatures, tile: int, align: int, whole_style: bool):
        self.network, self.tile, self.align, self.whole_style = network, tile, align, whole_style

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> Features:
        return tiled_features(self.network, image, layers, self.tile, self.align)

    def grams(self, styles: Sequence[torch.Tensor], blend: Sequence[float],
              layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return tiled_grams(self.network, styles, blend, layers, self.tile, self.align)

    @classmethod
    def for_styles(cls, network: VGGFeatures, tile: int, align: int, style_sizes: Sequence[tuple[int, int]],
                   style_size: int) -> "TileWindow":
        """The window of a scale whose style images (of PIL sizes `style_sizes`) are used at `style_size`:
        a style no larger than a tile takes one forward pass like a tile's (its term as without tiles)."""
        longest = max(max(fit_longest(size, style_side(size, style_size))) for size in style_sizes)
        return cls(network, tile, align, whole_style=longest <= tile)
