"""A loss term: one weighted part of the objective at one scale.

The objective the engine minimises is the sum of the terms it is given; the engine knows none of
them by name. A term is built once per scale from the network's features of its target image(s)
(content photo, style images, a warped previous frame, ...), keeps those targets, names the layers
it reads, and returns its weighted value from the current image's features. Adding a kind of loss
means writing a term, never touching the loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

Features = Mapping[str, torch.Tensor]


class Term:
    """Subclass and set `name` and `layers`; `__call__` returns the weighted scalar (a 0-d tensor).

    `name` is how the term shows in step reports, progress bars, loss logs and `--json`; several
    terms may share a name (one guided style term per masked style), and their values then add up.
    `layers` are the network layers `__call__` reads from `features`; a term on pixels (total
    variation, temporal consistency) reads none and uses `image`, the current (1, 3, H, W) image in
    [0, 1].
    """

    name: str = "term"
    layers: tuple[str, ...] = ()

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def keep_targets(self, targets: Mapping[str, torch.Tensor], weight: float,
                     layer_weights: Mapping[str, float] | None, default: float | None = None) -> None:
        """A term with a target per layer: its targets, the layers they name, its weight and one weight per
        layer (`default` where `layer_weights` has none; without a default every layer must be listed)."""
        self.targets = dict(targets)
        self.layers = tuple(self.targets)
        self.weight = float(weight)
        if default is None:
            self.layer_weights = {name: float(layer_weights[name]) for name in self.layers}
        else:
            self.layer_weights = {name: float((layer_weights or {}).get(name, default)) for name in self.layers}


def layers_read(terms: Sequence[Term]) -> tuple[str, ...]:
    """Every layer some term reads (each once, in the order first asked for)."""
    return tuple(dict.fromkeys(name for term in terms for name in term.layers))


def evaluate(terms: Sequence[Term], features: Features, image: torch.Tensor):
    """(total, {name: value}) for the current image; values stay tensors so reading them costs one sync."""
    values: dict[str, torch.Tensor] = {}
    total = None
    for term in terms:
        value = term(features, image)
        values[term.name] = value if term.name not in values else values[term.name] + value
        total = value if total is None else total + value
    if total is None:
        total = image.new_zeros(())
    return total, values


def layer_sum(loss, features: Features, targets: Features, layer_weights, image: torch.Tensor) -> torch.Tensor:
    """sum over the target layers of layer weight x loss(features, target): how a per-layer term adds up."""
    total = image.new_zeros(())
    for name, target in targets.items():
        total = total + layer_weights[name] * loss(features[name], target)
    return total
