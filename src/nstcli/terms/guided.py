"""Guided style: one style's Gram matrices matched only where its mask says (Gatys, Ecker, Bethge,
Hertzmann & Shechtman, "Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017, spatial
control).

At a style layer with features F (N channels x M positions) and the mask m brought to that layer's
resolution, the guided Gram matrix is

    G_m = (F * m)(F * m)^T / sum_p m_p^2

the paper's Gram of the features times the guidance channel, divided by the mass of the weighting
applied (sum m^2), so that it is the m^2-weighted mean of f_p f_p^T and compares like with like with
a whole image's F F^T / M. The per-layer loss is Gatys's 1/4 mean (G_m - A)^2, as in gram.py. For the
Wasserstein-2 loss (`guided_wasserstein`) the same m^2 weights the positions in the means and
covariances.

The term's weight is style_weight times the mask's share of the image (its mean): one masked style per
region then pushes each of its pixels exactly as hard as an unmasked style pushes every pixel, and
styles over a partition of the image add up to the weight of one style over all of it. (The paper
sums the regions' losses unscaled, which makes a small region's style much stronger per pixel.)

How the mask reaches a layer: it goes through the network's pooling, one 2x2 average for every pooling
layer before it (the convolutions are padded and keep the size). That gives exactly each layer's
shape, odd sizes included, and keeps masks that sum to 1 over the styles summing to 1 at every layer,
so every position of every layer belongs to some style. The paper's alternative, resizing and eroding,
leaves a band along each boundary that no style claims at the deep layers: a strip of content-only
texture, which shows as a seam.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from nstcli.terms.base import Features, Term
from nstcli.config.layers import LAYER_INDEX, LAYER_NAMES


def pools_before(layer: str) -> int:
    """How many pooling layers an image passes through up to and including `layer`."""
    return sum(1 for name in LAYER_NAMES[: LAYER_INDEX[layer] + 1] if name.startswith("pool"))


def mask_at_layer(mask: torch.Tensor, layer: str) -> torch.Tensor:
    """An (H, W) mask at the image's resolution -> (h, w) at `layer`'s, through the network's pooling."""
    x = mask[None, None]
    for _ in range(pools_before(layer)):
        # Floor mode, as nn.MaxPool2d(2, 2): the shape is the layer's exactly.
        x = F.avg_pool2d(x, kernel_size=2, stride=2)
    return x[0, 0]


def resize_mask(mask: torch.Tensor, shape) -> torch.Tensor:
    """(H, W) -> shape (h, w): bilinear with antialiasing, kept in [0, 1]."""
    if tuple(mask.shape) == tuple(shape):
        return mask
    out = F.interpolate(mask[None, None], size=tuple(shape), mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].clamp_(0, 1)


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(1, N, h, w) features and an (h, w) mask -> the (1, N, N) guided Gram matrix (F m)(F m)^T / sum m^2."""
    b, n, h, w = features.shape
    flat = (features * mask).reshape(b, n, h * w)
    mass = (mask * mask).sum().clamp_min(1e-12)
    return torch.bmm(flat, flat.transpose(1, 2)) / mass


def guided_style_loss(features: torch.Tensor, mask: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """1/4 mean (guided_gram(features, mask) - target_gram)^2, with a backward of one matrix product."""
    return _GuidedGramLoss.apply(features, mask, target_gram)


def _positions_by_channels(x: torch.Tensor) -> torch.Tensor:
    """(b, n, h, w) -> (b, h*w, n): a view for channels_last memory, which is what the network gives."""
    b, n, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, n)


class _GuidedGramLoss(torch.autograd.Function):
    # As gram.py's fused loss: autograd's backward of the Gram matrix is two products and an add;
    # this is one, (G - A) (F m), then times m again for the product with the mask. No double backward.
    @staticmethod
    def forward(ctx, features, mask, target_gram):
        weighted = features * mask
        mass = (mask * mask).sum().clamp_min(1e-12)
        flat_t = _positions_by_channels(weighted)
        residual = torch.bmm(flat_t.transpose(1, 2), flat_t).div_(mass).sub_(target_gram)
        ctx.save_for_backward(weighted, mask, residual, mass)
        return 0.25 * torch.mean(residual * residual)

    @staticmethod
    def backward(ctx, grad):
        weighted, mask, residual, mass = ctx.saved_tensors
        b, n, h, w = weighted.shape
        # E = 1/4 mean((G - A)^2) over b*n*n entries, G = (F m)(F m)^T / mass: as G - A is symmetric (A is
        # a Gram matrix), dE/d(F m) = (G - A)(F m) / (b n^2 mass), and d(F m)/dF = m. The small n x n factor is scaled, not the large product.
        scaled = residual * (grad / (b * n * n * mass))
        d_weighted = torch.bmm(_positions_by_channels(weighted), scaled).view(b, h, w, n).permute(0, 3, 1, 2)
        return d_weighted * mask, None, None


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(r0, r1, c0, c1): the smallest box holding every nonzero of an (h, w) mask (all of it if none)."""
    rows = torch.nonzero(mask.amax(1) > 0).flatten()
    cols = torch.nonzero(mask.amax(0) > 0).flatten()
    if rows.numel() == 0:
        return 0, mask.shape[0], 0, mask.shape[1]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def layer_masks(mask: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    return {name: mask_at_layer(mask, name) for name in layers}


class GuidedGramStyle(Term):
    """weight * share * sum_l w_l * 1/4 mean (G_m,l - A_l)^2 for one style and its mask."""

    name = "style"  # reports sum every masked style under "style", like the unmasked term

    def __init__(self, targets: Mapping[str, torch.Tensor], mask: torch.Tensor,
                 layer_weights: Mapping[str, float], weight: float,
                 masks: Mapping[str, torch.Tensor] | None = None):
        """`targets`: {layer: (1, N, N) target Gram}; `mask`: (H, W) at the generated image's size;
        `masks`: the layer masks when they are already known (a tile's, cut from the whole image's)."""
        self.keep_targets(targets, weight, layer_weights)
        self.mask = mask
        self.share = float(mask.mean())
        self.masks = dict(masks) if masks is not None else layer_masks(mask, self.layers)
        # Positions outside the mask's bounding box contribute nothing: leaving them out makes two
        # styles on two halves cost what one style on the whole image does.
        self.boxes = {name: bounding_box(value) for name, value in self.masks.items()}
        self.box_masks = {name: value[r0:r1, c0:c1] for name, value in self.masks.items()
                          for r0, r1, c0, c1 in [self.boxes[name]]}

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        total = image.new_zeros(())
        for name, target in self.targets.items():
            r0, r1, c0, c1 = self.boxes[name]
            inside = features[name][..., r0:r1, c0:c1]
            mask = self.box_masks[name].to(inside.dtype)
            total = total + self.layer_weights[name] * guided_style_loss(inside, mask, target)
        return (self.weight * self.share) * total

    def crop(self, top: int, left: int, height: int, width: int) -> "GuidedGramStyle | None":
        """This term for the tile image[..., top:top+height, left:left+width] (pixels at this scale).

        The targets are the style's statistics and stay; the mask is cropped at the image's resolution
        and brought to the layers again, so the tile's layer masks match its own feature maps. None
        when the style does not reach the tile (the term would be 0 there).
        """
        mask = self.mask[top: top + height, left: left + width]
        if not bool((mask > 0).any()):
            return None
        return GuidedGramStyle(self.targets, mask, self.layer_weights, self.weight)

    def at(self, tile) -> "GuidedGramStyle | None":
        """This term on one tile of a tiled scale (tiling/): `tile.interior` is its (y0, y1, x0, x1) in
        pixels, `tile.cells(layer)` the same box in the whole image's feature map of `layer`.

        The layer masks are cut from the whole image's, so they line up with the interior features
        the tile's term is given, whatever context the network saw around it. None where the style
        does not reach the tile.
        """
        y0, y1, x0, x1 = tile.interior
        mask = self.mask[y0:y1, x0:x1]
        if not bool((mask > 0).any()):
            return None
        masks = {}
        for name in self.layers:
            r0, r1, c0, c1 = tile.cells(name)
            masks[name] = self.masks[name][r0:r1, c0:c1]
        return GuidedGramStyle(self.targets, mask, self.layer_weights, self.weight, masks)


def guided_wasserstein(style_features: Features, mask: torch.Tensor, source: torch.Tensor | None,
                       layer_weights: Mapping[str, float], weight: float) -> Term:
    """The Wasserstein-2 style term (terms/wasserstein.py) over the region `mask` marks.

    The same guidance as the Gram term: at each layer the positions are weighted by m^2 (the
    weighting F * m applies to every product of features), normalised by their mass; the targets are
    the style's means and covariances over all of it, or over its `source` region weighted alike.
    """
    from nstcli.terms.wasserstein import GaussianTarget, WassersteinStyle, moments

    targets, positions, weights = {}, {}, {}
    for name, layer_weight in layer_weights.items():
        features = style_features[name].detach()
        source_weights = None if source is None else mask_at_layer(source, name).square()
        if source_weights is not None and not bool(source_weights.sum() > 0):
            source_weights = None  # the source region vanished at this depth: the whole image's statistics
        with torch.no_grad():
            targets[name] = GaussianTarget.from_moments(*moments(features, source_weights, in_float64=True))
        positions[name] = mask_at_layer(mask, name).square()
        # A region too small to reach this layer (all of it in the pooling's floor remainder) has no
        # positions there to compare.
        weights[name] = float(layer_weight) if bool(positions[name].sum() > 0) else 0.0
    return WassersteinStyle(targets, weights, weight * float(mask.mean()), position_weights=positions)


@torch.no_grad()
def guided_targets(features: Features, layers, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """{layer: target Gram} of a style image: of all of it, or of the region `mask` (at its size) marks."""
    if mask is None:
        from nstcli.terms.gram import gram_matrix

        return {name: gram_matrix(features[name].detach()) for name in layers}
    return {name: guided_gram(features[name].detach(), mask_at_layer(mask, name).to(features[name].dtype))
            for name in layers}
