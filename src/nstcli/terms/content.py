"""Content: keep the image's feature maps close to the photo's (Gatys, Ecker & Bethge 2016).

For one layer with N channels and M = H*W positions, L_c = 1/(2NM) * sum (F - P)^2. Gatys writes
1/2 * sum (F - P)^2, which grows with the number of positions, so the same alpha would mean
something else at every image size; dividing by N*M (a mean) keeps alpha's meaning fixed across
sizes and across coarse-to-fine scales.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from nstcli.terms.base import Features, Term, layer_sum


class Content(Term):
    """weight * sum over layers of w_l * 1/(2NM) * sum (F - P)^2, P the target's features at that layer.

    `layer_weights` (default 1 each) carry the normalisation of terms/normalise.py.
    """

    name = "content"

    def __init__(self, targets: Mapping[str, torch.Tensor], weight: float,
                 layer_weights: Mapping[str, float] | None = None):
        self.keep_targets(targets, weight, layer_weights, default=1.0)

    @classmethod
    def from_features(cls, features: Features, layers: Sequence[str], weight: float,
                      layer_weights: Mapping[str, float] | None = None) -> "Content":
        return cls({name: features[name].detach() for name in layers}, weight, layer_weights)

    def at(self, tile) -> "Content":
        """This term on one tile of a tiled scale (tiling/): its targets cut to `tile.cells(layer)`, the
        tile's box in the whole image's feature map of each layer; the layer weights stay the whole's."""
        def cut(value, name):
            r0, r1, c0, c1 = tile.cells(name)
            return value[..., r0:r1, c0:c1]

        return Content({name: cut(value, name) for name, value in self.targets.items()}, self.weight,
                       self.layer_weights)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * layer_sum(content_loss, features, self.targets, self.layer_weights, image)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/(2NM) * sum (F - P)^2, with a backward of one pass over the feature map."""
    return _ContentLoss.apply(features, target)


class _ContentLoss(torch.autograd.Function):
    # Autograd's backward of a squared error is three passes over the feature map; this is one,
    # written straight into the feature map's layout (channels_last stays channels_last). No double
    # backward, which no optimiser here needs.
    @staticmethod
    def forward(ctx, features, target):
        diff = features - target
        ctx.save_for_backward(diff)
        return 0.5 * torch.mean(diff * diff)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        # d/dF of 0.5 * mean((F - P)^2) is (F - P) / numel
        return diff * (grad / diff.numel()), None
