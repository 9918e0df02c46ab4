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
    return _ContentLoss.apply(features, target)


def style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Gatys's E_l with G and A normalised by M: 1/4 * mean (G - A)^2."""
    return 0.25 * torch.mean((gram - target_gram) ** 2)


def gram_style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """style_loss(gram_matrix(features), target_gram), with a backward of one matrix product."""
    return _GramStyleLoss.apply(features, target_gram)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smoothness); size-independent."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx**2) + torch.mean(dy**2)


# Hand-written backwards. Autograd would get these gradients right too, but pays for them: the Gram
# matrix's backward is two matrix products and an add (it does not know both factors are the same
# tensor), and the squared error's is three passes over the feature map. Here each is one product or
# one pass, written straight into the layout of the feature map (channels_last stays channels_last,
# so adding it to the network's own gradient is a plain elementwise add). Neither supports double
# backward, which no optimiser here needs.


class _ContentLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, target):
        diff = features - target
        ctx.save_for_backward(diff)
        return 0.5 * torch.mean(diff * diff)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        # d/dF of 0.5 * mean((F - P)^2) is (F - P) / numel
        return diff * (grad / diff.numel()), None


class _GramStyleLoss(torch.autograd.Function):
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
