"""The one place a scale's objective is put together: loss settings, targets and spatial parts to terms.

`stylize` (whole or in tiles), batches and video frames all get their list of terms from
`build_objective`; `reconstruct`'s figures get their one term from `reconstruction_term`. What differs between them enters as data, not as another builder:
- the colour mode (`preserve_color`): the content and style targets recoloured first (image/colour.py);
- the masks (`Guides`): where each style paints, where its statistics come from, how much content
  each pixel keeps;
- the tile window of a tiled scale (`Window`, from tiling/): the whole image's features computed one
  tile at a time, and Gram matrices summed over tiles when a style image is larger than a tile;
- a cached style term (`Styles.cached`), which a style prepared once reuses when nothing recolours it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from nstcli.image import colour
from nstcli.image.io import prepare
from nstcli.network.features import VGGFeatures
from nstcli.terms.base import Features, Term
from nstcli.terms.content import Content
from nstcli.terms.objective import (content_layer_weights, features_of, gram_layer_weights,
                                    normalised_wasserstein, pixel_terms, style_layer_weights, style_term_for)
from nstcli.terms.settings import LossSettings


@dataclass(frozen=True)
class Styles:
    """The style images of one scale: made on demand (a cached term may make them unnecessary)."""

    tensors: Callable[[], list[torch.Tensor]]
    blend: Sequence[float]
    cached: Callable[[], Term] | None = None  # the style term of the images as they are, from a cache


@dataclass(frozen=True)
class Guides:
    """The masks of one scale (stylize/masks.py decodes and checks them)."""

    style: Sequence[torch.Tensor] | None = None  # per style, (h, w) at the image's size, normalised
    source: Sequence[torch.Tensor] | None = None  # per style, (H, W) as decoded: brought to the style's size here
    content: torch.Tensor | None = None  # (h, w) at the image's size


class Window(Protocol):
    """How a tiled scale sees whole images without a forward pass over one (tiling/window.py)."""

    whole_style: bool  # every style image fits one tile: its term is made as without tiles

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> Features: ...

    def grams(self, styles: Sequence[torch.Tensor], blend: Sequence[float],
              layers: Sequence[str]) -> dict[str, torch.Tensor]: ...


def build_objective(loss: LossSettings, network: VGGFeatures, content: torch.Tensor, styles: Styles, *,
                    guides: Guides | None = None, window: Window | None = None) -> tuple[torch.Tensor, list[Term]]:
    """(content target, terms) of one scale: the content term, the style terms, the pixel terms."""
    recoloured = None
    target = content
    if loss.recolours_targets:
        # The style is recoloured to match this content image, so its targets are this run's own.
        target, recoloured = colour.colour_targets(loss.preserve_color, content, styles.tensors())
        target, recoloured = prepare(target, content.device), [prepare(s, content.device) for s in recoloured]
    # One forward of the content serves the content term and the neighbour term's search.
    content_features = features_of(network, target) if window is None else None
    terms = [content_term(loss, network, target, guides.content if guides else None, window, content_features)]
    style_images = (lambda: recoloured) if recoloured is not None else styles.tensors
    if guides is not None and guides.style is not None:
        terms += guided_style_terms(loss, network, style_images(), guides)
    elif window is None or window.whole_style:
        use_cache = recoloured is None and styles.cached is not None
        style = styles.cached() if use_cache else style_term_for(loss, network, style_images(), styles.blend)
        # A term whose targets depend on the content (neighbours) is bound to this scale's; the
        # cached one is left as it was, for the next content image.
        bind = getattr(style, "for_content", None)
        terms.append(bind(content_features, target.shape) if bind is not None and content_features else style)
    elif loss.style_loss != "gram":
        terms.append(style_term_for(loss, network, style_images(), styles.blend))
    else:
        from nstcli.terms.gram import GramStyle

        grams = window.grams(style_images(), styles.blend, loss.style_layers)
        terms.append(GramStyle(grams, gram_layer_weights(loss, grams), loss.style_weight))
    return target, terms + pixel_terms(loss)


def content_term(loss: LossSettings, network: VGGFeatures, target: torch.Tensor, mask: torch.Tensor | None = None,
                 window: Window | None = None, features: Features | None = None) -> Term:
    """The content term of `target`, weighted by `mask` where given (each cut to a tile by its `at`);
    `features` are the target's own, when already computed."""
    if window is not None:
        targets = window.features(target, loss.content_layers)
    else:
        features = features if features is not None else features_of(network, target)
        targets = {name: features[name] for name in loss.content_layers}
    return content_term_of(loss, targets, mask)


def content_term_of(loss: LossSettings, targets: Features, mask: torch.Tensor | None = None) -> Term:
    """The content term of target features already computed (fast/loss.py has a batch's), normalised
    by those targets."""
    if loss.content_loss == "self-similarity":
        from nstcli.terms.self_similarity import SelfSimilarity

        if mask is not None:
            raise ValueError("the self-similarity content term has no masked form")
        return SelfSimilarity.from_features(targets, loss.content_weight)
    if mask is None:
        return Content(targets, loss.content_weight, content_layer_weights(loss, targets))
    from nstcli.terms.masked_content import MaskedContent

    return MaskedContent(targets, mask, loss.content_weight, layer_weights=content_layer_weights(loss, targets))


def guided_style_terms(loss: LossSettings, network: VGGFeatures, styles: Sequence[torch.Tensor],
                       guides: Guides) -> list[Term]:
    """One guided style term per style whose mask reaches this scale's image."""
    from nstcli.terms.guided import GuidedGramStyle, guided_targets, guided_wasserstein, resize_mask

    layer_weights = style_layer_weights(loss)
    terms: list[Term] = []
    for index, (style, mask) in enumerate(zip(styles, guides.style)):
        if not bool((mask > 0).any()):
            continue
        source = None
        if guides.source is not None:
            source = resize_mask(guides.source[index], style.shape[-2:]).to(style.device)
        features = features_of(network, style)
        if loss.style_loss == "wasserstein":
            terms.append(normalised_wasserstein(
                loss, guided_wasserstein(features, mask, source, layer_weights, loss.style_weight)))
            continue
        targets = guided_targets(features, loss.style_layers, source)
        terms.append(GuidedGramStyle(targets, mask, gram_layer_weights(loss, targets, layer_weights),
                                     loss.style_weight))
    return terms


def reconstruction_term(kind: str, loss: LossSettings, network: VGGFeatures, image: torch.Tensor,
                        layers: Sequence[str]) -> Term:
    """The one term of a reconstruction figure (Gatys et al. 2016, Fig. 1) at weight 1: `image`'s
    content at one layer, or its style (Gram matrices) over `layers`, each layer weighed alike.

    Normalised as stylize's terms are (`loss_normalization`): with the original VGG19's raw
    magnitudes a Gram loss is ~10^12 and conv1_1 weighs nothing beside conv5_1 in a style figure."""
    features = features_of(network, image)
    if kind == "content":
        targets = {name: features[name] for name in layers}
        return Content(targets, 1.0, content_layer_weights(loss, targets))
    from nstcli.terms.gram import GramStyle, blended_grams

    targets = blended_grams([features], [1.0], layers)
    return GramStyle(targets, gram_layer_weights(loss, targets, {name: 1.0 for name in layers}), 1.0)
