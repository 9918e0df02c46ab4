"""Gram style: match the channel correlations of the style image (Gatys, Ecker & Bethge 2016).

For one layer with N channels and M = H*W positions, G = F F^T / M (the average over positions of
the channel products) and E_l = 1/4 * mean over the N x N entries of (G - A)^2 =
1/(4 N^2 M^2) * sum (FF^T - A M)^2: exactly Gatys's per-layer term, which does not depend on the
image size. The term is weight * sum_l w_l E_l.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from nstcli.terms.base import Features, Term, layer_sum


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) -> (B, N, N), normalised by the number of positions M = H*W."""
    b, n, h, w = features.shape
    flat = features.reshape(b, n, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def blend_grams(grams_of: Callable[[Any], Features], styles: Sequence, blend: Sequence[float],
                layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """{layer: sum_i blend_i G_i / sum blend} over the styles of non-zero blend weight, G_i = grams_of(style_i)."""
    total = sum(blend)
    grams: dict[str, torch.Tensor] = {}
    for style, share in zip(styles, blend):
        if share == 0:
            continue
        each = grams_of(style)
        for name in layers:
            gram = each[name] * (share / total)
            grams[name] = gram if name not in grams else grams[name] + gram
    return grams


def blended_grams(style_features: Sequence[Features], blend: Sequence[float], layers: Sequence[str]):
    """One target Gram per layer for several style images (blend_grams of their features)."""
    return blend_grams(lambda features: {name: gram_matrix(features[name].detach()) for name in layers},
                       style_features, blend, layers)


class GramStyle(Term):
    """weight * sum_l w_l * 1/4 mean (G_l - A_l)^2."""

    name = "style"

    def __init__(self, targets: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float], weight: float):
        self.keep_targets(targets, weight, layer_weights)

    @classmethod
    def from_features(cls, style_features: Sequence[Features], blend: Sequence[float],
                      layer_weights: Mapping[str, float], weight: float) -> "GramStyle":
        return cls(blended_grams(style_features, blend, list(layer_weights)), layer_weights, weight)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * layer_sum(gram_style_loss, features, self.targets, self.layer_weights, image)


def style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Gatys's E_l with G and A normalised by M: 1/4 * mean (G - A)^2."""
    return 0.25 * torch.mean((gram - target_gram) ** 2)


def gram_style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """style_loss(gram_matrix(features), target_gram), with a backward of one matrix product."""
    return _GramStyleLoss.apply(features, target_gram)


class _GramStyleLoss(torch.autograd.Function):
    # Autograd's backward of the Gram matrix is two matrix products and an add (it does not know
    # both factors are the same tensor); this is one product, written straight into the feature
    # map's layout, so adding it to the network's own gradient is a plain elementwise add.
    @staticmethod
    def forward(ctx, features, target_gram):
        b, n, h, w = features.shape
        m = h * w
        flat = features.reshape(b, n, m)
        residual = torch.bmm(flat, flat.transpose(1, 2)).div_(m).sub_(target_gram)
        ctx.save_for_backward(features, residual)
        return 0.25 * torch.mean(residual * residual)

    @staticmethod
    def backward(ctx, grad):
        features, residual = ctx.saved_tensors
        b, n, h, w = features.shape
        m = h * w
        # E = 1/4 mean((G - A)^2) over b*n*n entries, G = F F^T / m. dE/dG = (G - A) / (2 b n^2), and
        # as G - A is symmetric, dE/dF = 2 dE/dG F / m: a single product (G - A) F.
        # Scale the small n x n factor, not the large product.
        scaled = residual * (grad / (b * n * n * m))
        if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
            # (F^T R) is (b, m, n) row-major, which is exactly channels_last memory for (b, n, h, w).
            flat_t = features.permute(0, 2, 3, 1).reshape(b, m, n)
            return torch.bmm(flat_t, scaled).view(b, h, w, n).permute(0, 3, 1, 2), None
        return torch.bmm(scaled, features.reshape(b, n, m)).view(b, n, h, w), None
