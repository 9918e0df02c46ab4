"""What the loss terms read of a run's settings: weights, layers, the style loss, normalisation, colour.

The builder (terms/builder.py) and everything it calls receive a `LossSettings`, not the whole
`Config`: these are the only keys an objective depends on. The names are the config keys', so
`Config.pick(LossSettings)` takes them over one for one and the defaults stay in config/fields.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossSettings:
    content_weight: float
    style_weight: float
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...] | None  # None: 1 per layer, less for block 5 (objective.py)
    style_loss: str  # "gram", "wasserstein" or "neighbours"
    content_loss: str  # "features" or "self-similarity"
    neighbour_content_mix: float  # neighbours: the content's share in what is searched for
    neighbour_refresh: int  # neighbours: steps between searches (0: once per scale)
    style_rotations: tuple[int, ...]  # the quarter turns each style image is also read at
    loss_normalization: str  # "target" (terms/normalise.py) or "none"
    tv_weight: float
    tv_stencil: str
    preserve_color: str  # "none", "luminance", "histogram" or "oklab" (image/colour.py)

    @property
    def normalising(self) -> bool:
        """Whether terms are divided by their targets' magnitude (terms/normalise.py)."""
        return self.loss_normalization == "target"

    @property
    def recolours_targets(self) -> bool:
        """Whether the colour mode changes the targets (oklab only recolours the result, afterwards)."""
        return self.preserve_color in ("luminance", "histogram")
