"""Total variation: a smoothness prior on the pixels (Mahendran & Vedaldi 2015)."""

from __future__ import annotations

import torch

from nstcli.terms.base import Features, Term


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels; size-independent."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx**2) + torch.mean(dy**2)


def tv_interior(image: torch.Tensor) -> torch.Tensor:
    """jcjohnson/neural-style's TVLoss as a mean: right and down differences of the pixels that have
    both neighbours (the top-left (H-1) x (W-1) block), summed, averaged over that block."""
    corner = image[..., :-1, :-1]
    dx = corner - image[..., :-1, 1:]
    dy = corner - image[..., 1:, :-1]
    return torch.mean(dx**2 + dy**2)


class TotalVariation(Term):
    """weight * the total variation of the image, by `stencil`: reads no layer.

    "forward": tv_loss above. "ninepoint": crowsonkb/style-transfer-pytorch's stencil on the
    edge-replicated image (terms/tv_stencil.py), which also weighs the diagonal neighbours.
    "interior": tv_interior above, for the neural-style recipe.
    """

    name = "tv"

    def __init__(self, weight: float, stencil: str = "forward"):
        self.weight = float(weight)
        if stencil == "ninepoint":
            from nstcli.terms.tv_stencil import tv_ninepoint

            self.loss = tv_ninepoint
        elif stencil == "interior":
            self.loss = tv_interior
        else:
            self.loss = tv_loss

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * self.loss(image)
