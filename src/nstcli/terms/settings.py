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
    style_loss: str  # "gram" or "wasserstein"
    loss_normalization: str  # "target" (terms/normalise.py) or "none"
    tv_weight: float
    tv_stencil: str
    preserve_color: str  # "none", "luminance" or "histogram" (image/colour.py)

    @property
    def normalising(self) -> bool:
        """Whether terms are divided by their targets' magnitude (terms/normalise.py)."""
        return self.loss_normalization == "target"
