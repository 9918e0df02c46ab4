"""How the pixels move: the optimiser for one scale, its settings, and Adam's state between scales."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nstcli.optim.lbfgs import LBFGS

LBFGS_HISTORY_BYTES = 1 << 30


@dataclass(frozen=True)
class OptimizerSettings:
    name: str  # "lbfgs" or "adam"
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)  # Adam only
    pyramid_levels: int = 0  # Adam only: optimise a Laplacian pyramid of the image (optim/pyramid.py)


def lbfgs_history(values: int) -> int:
    """Correction pairs to keep: 100 (jcjohnson/neural-style's default) while they fit in 1 GiB.

    Each pair is two float32 copies of the image: at 2048 x 1365 px, 100 pairs would be 6.7 GB (16
    fit in 1 GiB), more than the network's activations. Past a few dozen pairs the extra curvature
    information buys little (scipy's L-BFGS-B keeps 10).
    """
    return max(5, min(100, LBFGS_HISTORY_BYTES // (2 * 4 * values)))


def make_optimizer(settings: OptimizerSettings, pixels: torch.Tensor, state: dict | None = None):
    """The optimiser for `pixels`; for Adam, `state` (from `carried_state`) continues a previous scale."""
    if settings.name == "adam":
        opt = torch.optim.Adam([pixels], lr=settings.lr, betas=settings.betas)
        if state is not None:
            # Copies: Adam updates its state in place, and the caller may keep what it passed.
            opt.state[pixels] = {key: value.to(pixels.device, copy=True) for key, value in state.items()}
        return opt
    # One iteration per step() and no line search: each step is exactly one forward+backward, as in
    # jcjohnson/neural-style, and it never quietly stops before `steps`. nstcli's own L-BFGS takes the
    # same steps as torch.optim.LBFGS(max_iter=1) in a few large operations instead of hundreds of
    # small ones (see lbfgs.py).
    return LBFGS([pixels], lr=settings.lr, history_size=lbfgs_history(pixels.numel()))


def carried_state(opt, pixels: torch.Tensor) -> dict | None:
    """Adam's moments after a scale, to start the next one from (None for L-BFGS: its curvature
    pairs describe this scale's pixels and mean nothing at another size)."""
    if not isinstance(opt, torch.optim.Adam) or pixels not in opt.state:
        return None
    state = opt.state[pixels]
    return {"step": state["step"].detach().clone(), "exp_avg": state["exp_avg"].detach(),
            "exp_avg_sq": state["exp_avg_sq"].detach()}


def resize_state(state: dict | None, size: tuple[int, int]) -> dict | None:
    """Adam's moments resized with the image (they are stored NHWC, like the optimised pixels).

    Restarting Adam at each scale from zero moments makes its first steps there as large as its very
    first step (bias correction divides by almost nothing), undoing part of what the coarse scale
    found; carried moments keep the step sizes the previous scale had settled on. The first moment
    is resized like the image (bicubic); the second is a variance, kept non-negative (bilinear).
    """
    if state is None:
        return None

    def resized(tensor, mode):
        nchw = tensor.permute(0, 3, 1, 2)
        out = F.interpolate(nchw, size=size, mode=mode, align_corners=False)
        return out.permute(0, 2, 3, 1).contiguous()

    return {"step": state["step"], "exp_avg": resized(state["exp_avg"], "bicubic"),
            "exp_avg_sq": resized(state["exp_avg_sq"], "bilinear").clamp_(min=0)}


class IterateAverage:
    """Bias-corrected exponential moving average of the iterates (Polyak averaging with decay).

    Adam's iterates jitter around the optimum by about one learning rate; their average sits closer
    to it and looks smoother (crowsonkb/style-transfer-pytorch averages with decay 0.99). The first
    update is the starting image, and dividing by 1 - decay^t removes the pull towards zero that an
    average started at zero would have.
    """

    def __init__(self, start: torch.Tensor, decay: float):
        self.decay = decay
        self.weight = 0.0  # 1 - decay^t
        self.biased = torch.zeros_like(start)
        self.update(start)

    @torch.no_grad()
    def update(self, image: torch.Tensor) -> None:
        self.weight = 1.0 - (1.0 - self.weight) * self.decay
        self.biased.mul_(self.decay).add_(image, alpha=1.0 - self.decay)

    @property
    def value(self) -> torch.Tensor:
        return self.biased / self.weight
