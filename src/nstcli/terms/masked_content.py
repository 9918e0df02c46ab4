"""Content weighted by a map: how much each part of the image must keep the photo's features.

L_c = 1/(2NM) * sum_p m_p sum_c (F - P)^2 at each content layer, with m the content mask brought to
the layer through the network's pooling (terms/guided.py says why). Dividing by M, not by the map's
mass, keeps an all-white map exactly the plain content term and makes a black region free of it:
the map scales the content weight pixel by pixel, it does not move it around.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from nstcli.terms.base import Features, Term
from nstcli.terms.guided import layer_masks


class MaskedContent(Term):
    """weight * sum over layers of 1/(2NM) * sum m (F - P)^2."""

    name = "content"

    def __init__(self, targets: Mapping[str, torch.Tensor], mask: torch.Tensor | None, weight: float,
                 masks: Mapping[str, torch.Tensor] | None = None, layer_weights: Mapping[str, float] | None = None):
        """`mask`: (H, W) at the image's size, or None with `masks` ({layer: mask at that layer});
        `layer_weights` as in terms/content.py."""
        self.keep_targets(targets, weight, layer_weights, default=1.0)
        self.masks = dict(masks) if masks is not None else layer_masks(mask, self.layers)

    def at(self, tile) -> "MaskedContent":
        """This term on one tile of a tiled scale (tiling/): targets and masks cut to `tile.cells(layer)`,
        the tile's box in the whole image's feature map of each layer."""
        def cut(value, name):
            r0, r1, c0, c1 = tile.cells(name)
            return value[..., r0:r1, c0:c1]

        return MaskedContent({n: cut(t, n) for n, t in self.targets.items()}, None, self.weight,
                             {n: cut(m, n) for n, m in self.masks.items()}, self.layer_weights)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        total = image.new_zeros(())
        for name, target in self.targets.items():
            diff = features[name] - target
            total = total + self.layer_weights[name] * 0.5 * torch.mean(diff * diff * self.masks[name].to(diff.dtype))
        return self.weight * total
