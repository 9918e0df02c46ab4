"""The moving grid of one tiled scale: where each tile lies, its context margin, its blend weights.

The image is cut into overlapping square tiles whose interiors a feathered ramp blends (the ramps of
neighbouring tiles add up to 1); the grid moves at every step (offsets from a van der Corput
sequence, base 2 down and base 3 across), so no seam stays in one place. Each tile is seen by the
network with a margin of context, its crop starting on the deepest layer's pooling grid, so a tile's
features are the whole image's there (tiling/run.py says why tiles exist at all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nstcli.network import memory


def margin_and_overlap(tile: int, align: int = 1) -> tuple[int, int]:
    """Context margin on each side and overlap between neighbours, for a tile side: 1/32 of the
    tile, at most 16 px.

    Small, because every pixel of margin or overlap is paid for at every step, and not growing with
    the tile: how far a border disturbs the network's features is a fixed number of pixels, and the
    moving grid hides what a small overlap cannot. The margin is at least half a cell of the deepest
    layer (`align` pixels), so the crop holds every feature cell of its tile. The overlap is even,
    so each ramp is centred on a pixel boundary.
    """
    share = min(tile // 32, 16)
    return max(1, share, align // 2), max(2, share // 2 * 2)


def van_der_corput(index: int, base: int) -> float:
    """The index-th point of the van der Corput sequence in [0, 1): 0, 1/2, 1/4, 3/4, ... (base 2)."""
    value, denominator = 0.0, 1
    while index:
        index, digit = divmod(index, base)
        denominator *= base
        value += digit / denominator
    return value


def cuts(length: int, span: int, overlap: int, phase: float) -> list[int]:
    """Where consecutive tiles meet along one axis (the centre of each overlap), for interiors of at
    most `span` pixels, the grid shifted by `phase` (in [0, 1)) of its spacing.

    The cuts are evenly spaced, at most span - overlap apart; shifted, the first and last pieces are
    partial, and one shorter than a quarter of the spacing is widened to that (taking from its
    neighbour), so no step pays for a row of sliver tiles and neighbouring ramps never meet.
    """
    stride = span - overlap
    if length <= span:
        return []
    spacing = length / math.ceil(length / stride)
    least = max(overlap, spacing / 4)
    points, k = [], 0 if phase > 0 else 1
    while (point := (k + phase) * spacing) < length - 0.5:
        points.append(int(min(max(point, least), length - least) + 0.5))
        k += 1
    return sorted(set(points))


def spans(length: int, span: int, overlap: int, phase: float) -> list[tuple[int, int, int, int]]:
    """(start, end, own_start, own_end) of every tile along an axis: [start, end) is its interior,
    overlapping its neighbours by `overlap` around each cut; [own_start, own_end) is the part only it
    owns up to the cut (the own parts partition the axis)."""
    bounds = [0, *cuts(length, span, overlap, phase), length]
    half = overlap // 2
    out = []
    for k in range(len(bounds) - 1):
        start = bounds[k] - half if k > 0 else 0
        end = bounds[k + 1] + half if k + 2 < len(bounds) else length
        out.append((start, end, bounds[k], bounds[k + 1]))
    return out


def ramp(start: int, end: int, length: int, overlap: int) -> torch.Tensor:
    """Blend weights along one axis of an interior: 1 inside, rising linearly across an overlap with a
    neighbour (0 towards it); at an image edge there is no neighbour and no ramp."""
    position = torch.arange(start, end, dtype=torch.float32) + 0.5
    weight = torch.ones(end - start)
    if start > 0:
        weight = torch.minimum(weight, ((position - start) / overlap).clamp(0, 1))
    if end < length:
        weight = torch.minimum(weight, ((end - position) / overlap).clamp(0, 1))
    return weight


@dataclass(frozen=True)
class Tile:
    """One tile at one step: its interior, the part only it owns, and the crop the network sees."""

    interior: tuple[int, int, int, int]  # y0, y1, x0, x1 in the image
    own: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]

    def weight(self, height: int, width: int, overlap: int) -> torch.Tensor:
        """(1, h, w, 1) blend weights of the interior (NHWC, like the optimised pixels)."""
        y0, y1, x0, x1 = self.interior
        return (ramp(y0, y1, height, overlap)[:, None] * ramp(x0, x1, width, overlap)[None, :])[None, :, :, None]

    def boxes(self, layers: Sequence[str], own: bool = False) -> dict[str, tuple[int, int, int, int]]:
        """The interior (or own part) in each layer's feature map of the crop, rows and columns."""
        y0, y1, x0, x1 = self.own if own else self.interior
        cy0, cy1, cx0, cx1 = self.crop
        out = {}
        for name in layers:
            factor = 2 ** memory.pooling_depth(name)
            rows, cols = (cy1 - cy0) // factor, (cx1 - cx0) // factor
            out[name] = (*_cells(y0 - cy0, y1 - cy0, factor, rows), *_cells(x0 - cx0, x1 - cx0, factor, cols))
        return out

    def cells(self, layer: str, own: bool = False) -> tuple[int, int, int, int]:
        """The same box in the whole image's feature map of `layer` (crops start on its grid)."""
        r0, r1, c0, c1 = self.boxes([layer], own)[layer]
        factor = 2 ** memory.pooling_depth(layer)
        return r0 + self.crop[0] // factor, r1 + self.crop[0] // factor, c0 + self.crop[2] // factor, \
            c1 + self.crop[2] // factor


def _cells(start: int, end: int, factor: int, size: int) -> tuple[int, int]:
    # Halves round up, always (not to even, as round() does): crops start on the grid, so a cut then
    # falls on the same cell seen from either of its tiles.
    first = min((2 * start + factor) // (2 * factor), size - 1)
    return first, max(first + 1, min((2 * end + factor) // (2 * factor), size))


def _crop_axis(start: int, end: int, length: int, margin: int, align: int, least: int) -> tuple[int, int]:
    low = max(0, start - margin) // align * align
    high = min(length, end + margin)
    if high - low < least:  # too small for the deepest layer: more context
        high = min(length, low + least)
        low = max(0, high - least) // align * align
    return low, high


def layout(shape: tuple[int, int], tile: int, align: int, step: int = 0) -> list[Tile]:
    """The tiles covering an image of `shape` at step `step` (the grid moves from step to step)."""
    height, width = shape
    margin, overlap = margin_and_overlap(tile, align)
    span = tile - 2 * margin
    # An axis no longer than a tile is one tile, which needs no margin: it has no neighbours.
    down = spans(height, span if height > tile else height, overlap, van_der_corput(step, 2))
    across = spans(width, span if width > tile else width, overlap, van_der_corput(step, 3))
    tiles = []
    for y0, y1, oy0, oy1 in down:
        for x0, x1, ox0, ox1 in across:
            crop = (*_crop_axis(y0, y1, height, margin, align, align),
                    *_crop_axis(x0, x1, width, margin, align, align))
            tiles.append(Tile((y0, y1, x0, x1), (oy0, oy1, ox0, ox1), crop))
    return tiles


def grid_shape(shape: tuple[int, int], tile: int, align: int) -> tuple[int, int]:
    tiles = layout(shape, tile, align)
    return len({t.interior[:2] for t in tiles}), len({t.interior[2:] for t in tiles})


def crop(tensor: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    y0, y1, x0, x1 = box
    return tensor[..., y0:y1, x0:x1]
