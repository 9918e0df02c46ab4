"""Self-similarity content: keep how the photo's positions resemble each other, not its features.

Kolkin, Salavon & Shakhnarovich, "Style Transfer by Relaxed Optimal Transport and Self-Similarity"
(STROTSS, CVPR 2019). With X the content's hypercolumns (terms/hypercolumns.py, of the content layers)
and Y the image's at the same positions, D_X[i, j] = 1 - cos(X_i, X_j) and likewise D_Y; each is
divided by its column sums, and

    L = weight * N * mean |D_X / sum_i D_X - D_Y / sum_i D_Y|

over the N x N entries (N positions; the factor N is STROTSS's, making the term a mean over columns
of each column's summed difference). The image is free to take any features (the style's) so long as
what is alike in the photo stays alike: layout and faces are kept without the photo's texture.

Memory stays bounded: the positions are a coarse grid whose longest side is GRID_SIDE (STROTSS samples
about a thousand positions at random per step), so the matrices are at most 1024 x 1024 at any size.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from nstcli.terms.base import Features, Term
from nstcli.terms.hypercolumns import grid_for, hypercolumns

# At most GRID_SIDE x GRID_SIDE positions: 1024 at most, about STROTSS's sample.
GRID_SIDE = 32


def cosine_distances(rows: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) of 1 - cos between every pair of rows."""
    unit = F.normalize(rows, dim=1, eps=1e-8)
    return 1.0 - unit @ unit.t()


def column_normalised(distances: torch.Tensor) -> torch.Tensor:
    return distances / distances.sum(0, keepdim=True).clamp_min(1e-8)


def self_similarity_loss(current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """N * mean |column_normalised(D(current)) - target|, `target` already column-normalised."""
    return (column_normalised(cosine_distances(current)) - target).abs().mean() * current.shape[0]


def grid_of(features: Features, layer: str) -> tuple[int, int]:
    """The coarse grid of a feature map's image: GRID_SIDE on the longest side (or the map's own size if smaller)."""
    h, w = features[layer].shape[-2:]
    return grid_for((h, w), divisor=1, longest=GRID_SIDE)


class SelfSimilarity(Term):
    """weight * N * mean |D_X - D_Y| of column-normalised cosine-distance matrices."""

    name = "content"

    def __init__(self, target: torch.Tensor, layers: Mapping[str, float], grid: tuple[int, int], weight: float):
        self.target = target
        self.layer_weights = dict(layers)
        self.layers = tuple(self.layer_weights)
        self.grid = grid
        self.weight = float(weight)

    @classmethod
    @torch.no_grad()
    def from_features(cls, features: Features, weight: float) -> "SelfSimilarity":
        """From the content's features at the content layers (every layer weighted alike)."""
        layers = {name: 1.0 for name in features}
        grid = grid_of(features, next(iter(features)))
        target = column_normalised(cosine_distances(hypercolumns(features, layers, grid)))
        return cls(target, layers, grid, weight)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        current = hypercolumns(features, self.layer_weights, self.grid)
        return self.weight * self_similarity_loss(current, self.target)
