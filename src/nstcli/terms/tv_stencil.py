"""The nine-point total variation of crowsonkb/style-transfer-pytorch's recipe, as a pure function.

The image is padded by one pixel on every side by repeating its edge (so differences across the
border are zero and the border pixels are not pulled towards a black frame). Four kinds of squared
neighbour differences are averaged: horizontal and vertical ones between each pixel and its right /
lower neighbour (H x W of each), and the two diagonals between neighbouring pixels of the padded
image ((H + 1) x (W + 1) of each). Axis-aligned differences weigh 1/3 and diagonal ones 1/12, and
the sum is doubled:

    TV9 = 2 * ( mean dx^2 / 3 + mean dy^2 / 3 + mean d_diag^2 / 12 + mean d_anti^2 / 12 )

These are the weights of the nine-point discrete Laplacian (axis neighbours 4x the diagonal ones),
which is more nearly isotropic than the usual four-point stencil, so the smoothing has no preferred
direction. The means make it independent of the image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AXIS_WEIGHT = 1.0 / 3.0
DIAGONAL_WEIGHT = 1.0 / 12.0


def _mean_square(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).mean()


def tv_ninepoint(image: torch.Tensor) -> torch.Tensor:
    """TV9 (see the module docstring) of a (B, C, H, W) image; unweighted, differentiable."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    centre = padded[..., 1:-1, 1:-1]
    right = padded[..., 1:-1, 2:]
    below = padded[..., 2:, 1:-1]
    axis = _mean_square(right, centre) + _mean_square(below, centre)
    # Diagonal pairs of the padded image: (i, j)-(i+1, j+1) and (i, j+1)-(i+1, j).
    diagonal = (_mean_square(padded[..., 1:, 1:], padded[..., :-1, :-1])
                + _mean_square(padded[..., 1:, :-1], padded[..., :-1, 1:]))
    return 2.0 * (AXIS_WEIGHT * axis + DIAGONAL_WEIGHT * diagonal)
