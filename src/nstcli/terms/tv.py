"""Total variation: a smoothness prior on the pixels (Mahendran & Vedaldi 2015)."""

from __future__ import annotations

import torch

from nstcli.terms.base import Features, Term


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels; size-independent."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx**2) + torch.mean(dy**2)


class TotalVariation(Term):
    """weight * the total variation of the image, by `stencil`: reads no layer.

    "forward": tv_loss above. "ninepoint": crowsonkb/style-transfer-pytorch's stencil on the
    edge-replicated image (terms/tv_stencil.py), which also weighs the diagonal neighbours.
    """

    name = "tv"

    def __init__(self, weight: float, stencil: str = "forward"):
        self.weight = float(weight)
        if stencil == "ninepoint":
            from nstcli.terms.tv_stencil import tv_ninepoint

            self.loss = tv_ninepoint
        else:
            self.loss = tv_loss

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * self.loss(image)
