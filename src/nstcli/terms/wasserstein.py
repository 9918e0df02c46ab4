"""Wasserstein-2 style term: match each layer's channel means and covariances.

A layer's activation is read as a cloud of M points (positions) in C dimensions (channels). Each
cloud is summarised by a Gaussian N(mu, Sigma); the style term is the squared Wasserstein-2 distance
between the current image's Gaussian and the style's, per channel:

    E_l = ( |mu - mu_t|^2 + tr(Sigma + Sigma_t - 2 (Sigma_t^1/2 Sigma Sigma_t^1/2)^1/2) ) / C

with a ridge (1e-4 I) added to both covariances so that the square roots stay well conditioned
(deep layers at small sizes have fewer positions than channels, so their sample covariance is
singular). This is the form and normalisation of crowsonkb/style-transfer-pytorch's W2 style loss
(means and diagonals averaged over channels), so its recipe reproduces with the same weights.

Only the trace of the matrix square root enters the loss. With M = A Sigma A, A = Sigma_t^1/2, and
M = V diag(lambda) V^T: tr M^1/2 = sum sqrt(lambda), and d tr(M^1/2) / d Sigma = 1/2 A M^-1/2 A, both
from one eigendecomposition of the small symmetric C x C matrix. It runs in float64: M's eigenvalues
span the ridge squared (1e-8) to the activations' variance, which float32 cannot resolve
(benchmarks/decisions/wasserstein_sqrt.py measures the alternatives, and benchmarks/README.md gives the
figures). Newton-Schulz iterations, the usual GPU choice, need many matrix products to converge on
eigenvalues that small.

Several styles blend by mixing their means and *raw* second moments with the blend weights, then
converting to one covariance: that is the covariance of the mixture of the styles' point clouds.
Mixing covariances instead would drop the spread between the styles' means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from nstcli.terms.base import Features, Term

RIDGE = 1e-4


# --- statistics of one layer -----------------------------------------------------------------------


def positions_by_channels(features: torch.Tensor) -> torch.Tensor:
    """A (1, C, H, W) activation as an (M, C) matrix, M = H*W, without copying in either layout."""
    b, c, h, w = features.shape
    if b != 1:
        raise ValueError(f"expected one image's activation (1, C, H, W), got batch {b}")
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return features.permute(0, 2, 3, 1).reshape(h * w, c)
    return features.reshape(c, h * w).t()


def normalised_position_weights(position_weights: torch.Tensor, positions: int) -> torch.Tensor:
    """Per-position weights (any shape with `positions` elements, e.g. (H, W)) divided by their mass."""
    flat = position_weights.reshape(-1)
    if flat.numel() != positions:
        raise ValueError(f"position weights have {flat.numel()} entries for {positions} positions")
    mass = flat.sum()
    if not mass > 0:
        raise ValueError("position weights must have a positive sum")
    return flat / mass


def exact_device(device: torch.device) -> torch.device:
    """Where the float64 work runs: the features' own device, except Apple's MPS, which has no float64."""
    return torch.device("cpu") if device.type == "mps" else device


def exact(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(device=exact_device(tensor.device), dtype=torch.float64)


def moments(features: torch.Tensor, position_weights: torch.Tensor | None = None,
            in_float64: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (C,), raw second moment (C, C)) of an activation over its positions.

    With `position_weights` (one non-negative weight per position, e.g. a mask resized to the
    layer), both are weighted averages, normalised by the weights' mass. `in_float64` computes them
    in float64 (targets always are: they are computed once per scale).
    """
    x = positions_by_channels(features)
    if in_float64:
        x = exact(x)
    if position_weights is None:
        return x.mean(0), x.t() @ x / x.shape[0]
    weights = normalised_position_weights(position_weights.to(x.device), x.shape[0]).to(x.dtype)
    return weights @ x, (x * weights[:, None]).t() @ x


def covariance(mean: torch.Tensor, second_moment: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """Sigma = E[x x^T] - mu mu^T + ridge * I."""
    cov = second_moment - torch.outer(mean, mean)
    return cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)


def blend_moments(per_style: Sequence[tuple[torch.Tensor, torch.Tensor]], blend: Sequence[float]):
    """The moments of the mixture: blend-weighted sums of the styles' means and raw second moments."""
    if len(per_style) != len(blend):
        raise ValueError(f"{len(per_style)} styles but {len(blend)} blend weights")
    if any(b < 0 for b in blend) or not sum(blend) > 0:
        raise ValueError(f"blend weights must be non-negative with a positive sum, got {list(blend)}")
    total = float(sum(blend))
    mean = sum(m * (b / total) for (m, _), b in zip(per_style, blend) if b)
    second = sum(s * (b / total) for (_, s), b in zip(per_style, blend) if b)
    return mean, second


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (by eigendecomposition)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.t()


@dataclass(frozen=True)
class GaussianTarget:
    """A layer's target statistics, computed once per scale, in float64."""

    mean: torch.Tensor  # (C,)
    sqrt_cov: torch.Tensor  # Sigma_t^1/2 (with the ridge), (C, C)
    trace_cov: float  # tr Sigma_t

    @classmethod
    def from_moments(cls, mean: torch.Tensor, second_moment: torch.Tensor, ridge: float = RIDGE) -> "GaussianTarget":
        mean, second_moment = exact(mean), exact(second_moment)
        cov = covariance(mean, second_moment, ridge)
        return cls(mean=mean, sqrt_cov=psd_sqrt(cov), trace_cov=float(torch.diagonal(cov).sum()))


# --- the loss of one layer, with its backward ------------------------------------------------------


# Float32 rounding in the product over positions puts errors of ~1e-7 relative into every entry of
# Sigma, also along the directions where the image's features do not vary (the ridge alone, 1e-4):
# there the gradient's 1/2 A M^-1/2 A amplifies them. Where there are few positions per channel the
# sample covariance has many such directions (it is singular for M < C), and the gradient of a
# float32 product drifts from the float64 one by up to 4e-5 relative (benchmarks/README.md); with
# many positions per channel it stays within 1e-5. So the product is taken in float64 exactly where
# positions are few, which is also where it is cheap (deep layers, coarse scales).
FLOAT64_MOMENTS_BELOW = 4  # positions per channel


def moments_in_float64(positions: int, channels: int) -> bool:
    return positions < FLOAT64_MOMENTS_BELOW * channels


def w2_layer_loss(features: torch.Tensor, target: GaussianTarget, ridge: float = RIDGE,
                  position_weights: torch.Tensor | None = None, float64_moments: bool | None = None) -> torch.Tensor:
    """E_l (see the module docstring) for one (1, C, H, W) activation; differentiable in `features`.

    `float64_moments` forces the product over positions into float64 (True) or the features' own
    precision (False); by default `moments_in_float64` decides from the layer's shape.
    """
    return _W2LayerLoss.apply(features, target, ridge, position_weights, float64_moments)


class _W2LayerLoss(torch.autograd.Function):
    # Forward: the moments (the product over positions, the only part that grows with the image) in
    # the features' precision or float64 (see moments_in_float64), everything C x C in float64.
    # Backward by hand: with G = dE/dSigma (symmetric) and g = dE/dmu (through both the mean term and Sigma's -mu mu^T),
    # dE/dx_m = w_m (2 G x_m + g) for position m (w_m = 1/M unweighted): one (M, C) x (C, C)
    # product, the same as the Gram term's backward, written into the features' own layout.

    @staticmethod
    def forward(ctx, features, target: GaussianTarget, ridge: float, position_weights, float64_moments):
        positions, channels = features.shape[2] * features.shape[3], features.shape[1]
        if float64_moments is None:
            float64_moments = moments_in_float64(positions, channels)
        mean, second = moments(features, position_weights, in_float64=float64_moments)
        mean, second = exact(mean), exact(second)
        weights = None
        if position_weights is not None:
            weights = normalised_position_weights(position_weights.to(features.device), positions).to(features.dtype)
        cov = covariance(mean, second, ridge)
        a = target.sqrt_cov
        values, vectors = torch.linalg.eigh(a @ cov @ a)
        values = values.clamp_min(0)
        mean_diff = mean - target.mean
        loss = (mean_diff @ mean_diff + torch.diagonal(cov).sum() + target.trace_cov
                - 2 * values.sqrt().sum()) / channels
        ctx.save_for_backward(features, *(() if weights is None else (weights,)))
        ctx.stats = (mean, mean_diff, values, vectors, a, channels, weights is not None)
        return loss.to(device=features.device, dtype=features.dtype)

    @staticmethod
    def backward(ctx, grad):
        features, *maybe_weights = ctx.saved_tensors
        mean, mean_diff, values, vectors, a, channels, weighted = ctx.stats
        av = a @ vectors
        # 1/2 A M^-1/2 A, with the eigenvalues floored where rounding could have left them at zero.
        floor = values[-1] * torch.finfo(values.dtype).eps
        inv_root = values.clamp_min(floor).rsqrt()
        g_cov = torch.eye(channels, dtype=av.dtype, device=av.device) - (av * inv_root) @ av.t()
        g_mean = 2 * mean_diff - 2 * (g_cov @ mean)
        scale = grad.double() / channels
        g_cov = (g_cov * scale).to(device=features.device, dtype=features.dtype)
        g_mean = (g_mean * scale).to(device=features.device, dtype=features.dtype)
        x = positions_by_channels(features)
        b, c, h, w = features.shape
        if weighted:
            (weights,) = maybe_weights
            dx = torch.addmm(g_mean.unsqueeze(0), x, g_cov, alpha=2.0) * weights[:, None]
        else:
            dx = torch.addmm(g_mean.unsqueeze(0), x, g_cov, alpha=2.0).div_(x.shape[0])
        if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
            # (M, C) row-major is exactly channels_last memory for (1, C, H, W).
            grad_features = dx.view(1, h, w, c).permute(0, 3, 1, 2)
        else:
            grad_features = dx.t().reshape(1, c, h, w)
        return grad_features, None, None, None, None


# --- the term ----------------------------------------------------------------------------------------


class WassersteinStyle(Term):
    """weight * sum over layers of layer_weight * E_l, against blended style statistics."""

    name = "style"

    def __init__(self, targets: Mapping[str, GaussianTarget], layer_weights: Mapping[str, float],
                 weight: float, ridge: float = RIDGE,
                 position_weights: Mapping[str, torch.Tensor] | None = None):
        missing = [layer for layer in layer_weights if layer not in targets]
        if missing:
            raise ValueError(f"no style statistics for layers {missing}")
        self.targets = dict(targets)
        self.layer_weights = dict(layer_weights)
        self.weight = float(weight)
        self.ridge = float(ridge)
        # Optional per-layer weights over the current image's positions (a region mask resized to
        # each layer), for a term that compares only part of the image with the style.
        self.position_weights = dict(position_weights or {})
        self.layers = tuple(self.layer_weights)

    @classmethod
    def from_features(cls, style_features: Sequence[Features], blend: Sequence[float],
                      layer_weights: Mapping[str, float], weight: float, ridge: float = RIDGE) -> "WassersteinStyle":
        """Targets from each style image's features ({layer: (1, C, H, W)}), blended by `blend`."""
        if len(style_features) != len(blend):
            raise ValueError(f"{len(style_features)} styles but {len(blend)} blend weights")
        used = [(features, b) for features, b in zip(style_features, blend) if b]
        targets = {}
        for layer in layer_weights:
            mean, second = blend_moments([moments(features[layer], in_float64=True) for features, _ in used],
                                         [b for _, b in used])
            targets[layer] = GaussianTarget.from_moments(mean, second, ridge)
        return cls(targets, layer_weights, weight, ridge)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        total = None
        for layer, layer_weight in self.layer_weights.items():
            if layer_weight == 0:
                continue
            value = w2_layer_loss(features[layer], self.targets[layer], self.ridge,
                                  self.position_weights.get(layer)) * layer_weight
            total = value if total is None else total + value
        if total is None:
            return image.new_zeros(())
        return total * self.weight
