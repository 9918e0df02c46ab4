"""Loss weights that mean the same on every network: each layer's term divided by its target's size.

A network that works on 0..255 pixels (the original VGG19) has activations about 255 times those of
one on 0..1 pixels (torchvision's); the content term grows with the square of that scale and the Gram
term with its fourth power, so one style weight meant balances 10^6 apart on the two (measured). With
`loss_normalization: target` every layer's term is divided by the matching power of its own target's
magnitude:

    content, per layer:   L_c / mean(P^2)                 (P: the content image's features)
    Gram style, per layer: E_l / (tr(A) / N)^2             (A: the target Gram; tr(A)/N = mean(S^2))
    Wasserstein, per layer: E_l / ((tr(Sigma_s) + |mu_s|^2) / N)   (the same mean(S^2))

so multiplying every feature map by a constant leaves every term, and the balance of the objective,
unchanged (tested); each term is then a relative error, of order one when the image's statistics are
as far from the target as a random image's. The factors are computed once per scale from the targets
of the whole image and enter as per-layer weights, so a tile's terms use the same ones as the whole.
`loss_normalization: none` keeps the raw formulas, which the recipes in configs/ need to reproduce
their sources term for term.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

# A layer whose target is all zeros (a black image's deep features can be) has no scale of its own;
# this floor keeps the factor finite, and such a layer's term stays zero-sized anyway.
_FLOOR = 1e-12


def content_scales(targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{layer: 1 / mean(P^2)} of content targets."""
    return {name: 1.0 / max(float(target.double().square().mean()), _FLOOR) for name, target in targets.items()}


def gram_scales(targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{layer: 1 / (tr(A) / N)^2} of target Gram matrices (B, N, N), A normalised by positions."""
    scales = {}
    for name, gram in targets.items():
        level = float(torch.diagonal(gram.double(), dim1=-2, dim2=-1).mean())
        scales[name] = 1.0 / max(level * level, _FLOOR)
    return scales


def gaussian_scales(targets: Mapping[str, object]) -> dict[str, float]:
    """{layer: 1 / mean second moment} of Wasserstein targets (terms/wasserstein.GaussianTarget)."""
    scales = {}
    for name, target in targets.items():
        channels = target.mean.numel()
        level = (target.trace_cov + float(target.mean.double().square().sum())) / channels
        scales[name] = 1.0 / max(level, _FLOOR)
    return scales


def scaled(weights: Mapping[str, float], scales: Mapping[str, float] | None) -> dict[str, float]:
    """Per-layer weights times their scales (unchanged when `scales` is None: no normalisation)."""
    if scales is None:
        return dict(weights)
    return {name: float(weight) * scales[name] for name, weight in weights.items()}
