"""How a network wants its pixels: the half of a "network source" that is not tensors.

The two VGG19 families were trained on differently prepared inputs, and a network fed the other
family's pixels sees a different picture (measured on the original VGG19: content features of
RGB 0..1 input differ from the right input's by more than the features themselves):

- the original VGG19 (Simonyan & Zisserman's Caffe release; Keras, jcjohnson/neural-style,
  neural-style-pt): BGR channel order, 0..255, minus the mean pixel (B 103.939, G 116.779,
  R 123.68), no division;
- torchvision's retrained IMAGENET1K_V1: RGB, 0..1, minus (0.485, 0.456, 0.406), divided by
  (0.229, 0.224, 0.225).

Everything downstream of the network hands it RGB images in [0, 1]; the convention is applied inside
`features.VGGFeatures`, so nothing else knows which network it runs on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputConvention:
    """network input[c] = (pixel_range * image[order[c]] - mean[c]) / std[c], per network channel c."""

    name: str
    order: tuple[int, int, int]  # which RGB channel feeds each network channel
    pixel_range: float
    mean: tuple[float, float, float]  # in the network's channel order and pixel units
    std: tuple[float, float, float]

    def rgb_offset(self) -> tuple[float, float, float]:
        """The mean as an offset on RGB [0, 1] pixels: what is subtracted before the first convolution."""
        offset = [0.0, 0.0, 0.0]
        for c, source in enumerate(self.order):
            offset[source] = self.mean[c] / self.pixel_range
        return tuple(offset)

    def input_gain(self) -> list[tuple[int, float]]:
        """Per network channel: (RGB channel it reads, factor on (image - rgb_offset))."""
        return [(source, self.pixel_range / self.std[c]) for c, source in enumerate(self.order)]


CAFFE = InputConvention("caffe", (2, 1, 0), 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
TORCHVISION = InputConvention("torchvision", (0, 1, 2), 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CONVENTIONS = {c.name: c for c in (CAFFE, TORCHVISION)}
