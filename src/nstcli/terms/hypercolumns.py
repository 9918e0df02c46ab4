"""Hypercolumns: several layers' features at one position, stacked into one vector.

Each layer's activation is divided by its channel count and resized to one common grid, then the
layers are concatenated along the channels (Kolkin et al.'s NNST and STROTSS both describe a position
this way). Dividing by the channel count keeps the 512-channel layers from outweighing the
64-channel ones in a cosine or a distance; a per-layer weight (the style layer weights) multiplies on
top. The grid is coarse (a quarter of the image's side, as NNST's), so early layers are averaged
down (each cell the mean of its pixels) and deep ones interpolated up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from nstcli.terms.base import Features

# NNST resizes every layer to a quarter of the image's side.
GRID_DIVISOR = 4


def grid_for(shape: Sequence[int], divisor: int = GRID_DIVISOR, longest: int | None = None) -> tuple[int, int]:
    """The (h, w) grid of an image of (H, W): its sides over `divisor`, the longest at most `longest`."""
    height, width = int(shape[-2]), int(shape[-1])
    h, w = max(1, height // divisor), max(1, width // divisor)
    if longest is not None and max(h, w) > longest:
        scale = longest / max(h, w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
    return h, w


def resized(features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, C, H, W) to (1, C, h, w): averaged over each cell when shrinking (every pixel counts, none
    aliases in), bilinear when growing."""
    if tuple(features.shape[-2:]) == tuple(grid):
        return features
    if features.shape[-2] >= grid[0] and features.shape[-1] >= grid[1]:
        return F.adaptive_avg_pool2d(features, grid)
    return F.interpolate(features, size=grid, mode="bilinear", align_corners=False)


def hypercolumns(features: Features, layer_weights: Mapping[str, float], grid: tuple[int, int]) -> torch.Tensor:
    """(h*w, D): one row per grid position, D the layers' channels together; differentiable."""
    parts = []
    for name, weight in layer_weights.items():
        if weight == 0:
            continue
        value = features[name].float()
        parts.append(resized(value, grid) * (weight / value.shape[1]))
    stacked = torch.cat(parts, dim=1)
    return stacked.reshape(stacked.shape[1], -1).t()
