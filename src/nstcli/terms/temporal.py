"""The temporal term: keep a video frame close to the previous stylised frame carried along the motion.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016), eq. (3): the squared
difference between the image and the previous stylised frame warped onto it by optical flow, counted
only where the flow is reliable (flow.reliable). Stylising every frame on its own lands each in a
different minimum of the same objective, which shows as flicker; this term picks, among the many
equally good minima, the one that agrees with the frame before.

Departure from the paper: Ruder et al. divide the masked sum by the number of pixel values of the
whole image (D = W H C), so the term weakens as more of a frame is masked. Here it is the mean over
the reliable pixels only, as the issue specifies: `temporal_weight` then means the same on a frame
that is mostly disoccluded as on a still one, and the value reads as a mean squared error in [0, 1]
pixel units (the same number the benchmark reports as temporal error).
"""

from __future__ import annotations

import torch

from nstcli.terms.base import Features, Term


def temporal_error(image: torch.Tensor, warped: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over reliable pixels (and colour channels) of (image - warped)^2; 0 if none is reliable.

    `image`, `warped`: (1, C, H, W); `mask`: (1, 1, H, W) with 1 where the flow is reliable.
    """
    reliable = mask.sum() * image.shape[1]
    squared = (image - warped) ** 2 * mask
    return squared.sum() / reliable.clamp_min(1)


class TemporalTerm(Term):
    """`weight` times the temporal error against `warped`, the previous stylised frame moved onto this one."""

    name = "temporal"
    layers = ()  # a term on pixels: it reads no network layer

    def __init__(self, warped: torch.Tensor, mask: torch.Tensor, weight: float):
        if warped.shape[-2:] != mask.shape[-2:]:
            raise ValueError(f"mask is {tuple(mask.shape[-2:])} but the warped frame is {tuple(warped.shape[-2:])}")
        self.warped = warped.detach()
        self.mask = mask.detach().to(warped.dtype)
        self.weight = float(weight)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        return self.weight * temporal_error(image, self.warped, self.mask)
