"""The pieces of an objective from the loss settings: layer weights, the style term `style_loss` names,
the pixel terms. terms/builder.py puts them together into one scale's list of terms."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nstcli.network.features import VGGFeatures
from nstcli.terms import normalise
from nstcli.terms.base import Features, Term
from nstcli.terms.settings import LossSettings
from nstcli.terms.tv import TotalVariation


# The default weight of a style layer in VGG19's fifth block (relu5_1) against 1 for the others. At full
# weight its Gram matrix, whose features respond to object parts, paints a portrait's face and eyes
# into the photo (Kahlo's face in the water, Matisse's eye on a river: benchmarks/stylize/ghosts.py). Chosen by
# looking at that panel: 0.2 and 0.1 still paint a face or an eye at style weight 30, 0.05 none there
# but a face again at 60; what counts is this weight times style_weight, kept near 1.4 with the
# default style_weight of 90. jcjohnson/neural-style's raw balance gives relu5_1 about 1/4000 of
# relu4_1's weight and shows no faces either.
DEEP_LAYER_WEIGHT = 0.015


def default_layer_weight(layer: str) -> float:
    return DEEP_LAYER_WEIGHT if layer.startswith(("relu5_", "conv5_")) or layer == "pool5" else 1.0


def style_layer_weights(loss: LossSettings) -> dict[str, float]:
    """Per style layer: the configured weights, or by default 1 but DEEP_LAYER_WEIGHT for block 5."""
    if loss.style_layer_weights is not None:
        return dict(zip(loss.style_layers, loss.style_layer_weights))
    return {layer: default_layer_weight(layer) for layer in loss.style_layers}


def content_layer_weights(loss: LossSettings, targets: Features) -> dict[str, float]:
    """Per content layer: 1, or 1 / mean(P^2) when normalising."""
    ones = {name: 1.0 for name in targets}
    return normalise.scaled(ones, normalise.content_scales(targets) if loss.normalising else None)


def gram_layer_weights(loss: LossSettings, targets: Features, layer_weights=None) -> dict[str, float]:
    """Per style layer: the configured weight, over (tr(A)/N)^2 when normalising."""
    weights = layer_weights if layer_weights is not None else style_layer_weights(loss)
    return normalise.scaled(weights, normalise.gram_scales(targets) if loss.normalising else None)


def normalised_wasserstein(loss: LossSettings, term):
    """A Wasserstein term (plain or guided) with its layer weights normalised when the settings say so."""
    if loss.normalising:
        term.layer_weights = normalise.scaled(term.layer_weights, normalise.gaussian_scales(term.targets))
    return term


def style_term(loss: LossSettings, style_features: Sequence[Features], blend: Sequence[float],
               shapes: Sequence[tuple[int, int]] | None = None) -> Term:
    """The style term `style_loss` names, its targets blended from every style image's features.

    `shapes` are the style images' (H, W), which the neighbour term's hypercolumn grid is cut from."""
    if loss.style_loss == "neighbours":
        from nstcli.terms.neighbours import NeighbourStyle

        if shapes is None:
            raise ValueError("the neighbour style term needs the style images' shapes")
        return NeighbourStyle.from_features(style_features, blend, shapes, style_layer_weights(loss),
                                            loss.style_weight, content_mix=loss.neighbour_content_mix,
                                            refresh=loss.neighbour_refresh)
    if loss.style_loss == "wasserstein":
        from nstcli.terms.wasserstein import WassersteinStyle

        return normalised_wasserstein(loss, WassersteinStyle.from_features(
            style_features, blend, style_layer_weights(loss), loss.style_weight))
    from nstcli.terms.gram import GramStyle, blended_grams

    targets = blended_grams(style_features, blend, loss.style_layers)
    return GramStyle(targets, gram_layer_weights(loss, targets), loss.style_weight)


# Targets are computed under no_grad, not inference_mode: the latter saves nothing measurable here (two
# forwards per run) but makes "inference tensors" that autograd refuses to save for backward, so any
# term that keeps its target for the backward (a product with the target) would fail.
@torch.no_grad()
def features_of(network: VGGFeatures, image: torch.Tensor) -> Features:
    return {name: value.detach() for name, value in network(image).items()}


@torch.no_grad()
def style_term_for(loss: LossSettings, network: VGGFeatures, styles: Sequence[torch.Tensor],
                   blend: Sequence[float]) -> Term:
    """The style term of `styles` (one forward each; styles with blend weight 0 are not computed)."""
    if loss.style_loss == "neighbours":
        from nstcli.terms.neighbours import NeighbourStyle, pooled, style_columns

        # One style's feature maps at a time, kept only as its hypercolumns: four rotations' maps of every
        # layer at 1024 px would be gigabytes, their hypercolumns on the quarter grid a small part of it.
        weights = style_layer_weights(loss)
        columns = (style_columns(features_of(network, style), weights, style.shape[-2:]) if share else None
                   for style, share in zip(styles, blend))
        return NeighbourStyle(pooled(columns, blend), weights, loss.style_weight,
                              content_mix=loss.neighbour_content_mix, refresh=loss.neighbour_refresh)
    features = [features_of(network, style) if share else {} for style, share in zip(styles, blend)]
    return style_term(loss, features, blend, [tuple(style.shape[-2:]) for style in styles])


def pixel_terms(loss: LossSettings) -> list[Term]:
    """Terms on the pixels themselves (no layer)."""
    return [TotalVariation(loss.tv_weight, loss.tv_stencil)] if loss.tv_weight else []
