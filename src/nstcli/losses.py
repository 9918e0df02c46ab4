"""Loss terms as pure functions of feature maps (Gatys, Ecker & Bethge 2016).

Notation: a layer's activation F has N channels and M = H*W positions (F is N x M).

- content:  L_c = 1/(2NM) * sum (F - P)^2. Gatys writes 1/2 * sum (F - P)^2, which grows with the
  number of positions, so the same alpha would mean something else at every image size; dividing by
  N*M (a mean) keeps alpha's meaning fixed across sizes and across coarse-to-fine scales.
- Gram:     G = F F^T / M, the average over positions of the channel products.
- style:    E_l = 1/4 * mean over the N x N entries of (G - A)^2 = 1/(4 N^2 M^2) * sum (FF^T - A M)^2,
  exactly Gatys's per-layer term; it does not depend on the image size.
- total:    alpha * sum_c L_c + beta * sum_l w_l E_l + tv * TV.
"""

from __future__ import annotations

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) -> (B, N, N), normalised by the number of positions M = H*W."""
    b, n, h, w = features.shape
    flat = features.reshape(b, n, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/(2NM) * sum (F - P)^2."""
    return 0.5 * torch.mean((features - target) ** 2)


def style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Gatys's E_l with G and A normalised by M: 1/4 * mean (G - A)^2."""
    return 0.25 * torch.mean((gram - target_gram) ** 2)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smoothness); size-independent."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx**2) + torch.mean(dy**2)
