"""The image as a Laplacian pyramid: Adam moves its levels, not its pixels.

A pixel's value is the sum of its pyramid levels (each coarser one upsampled), so one Adam step of
size lr on every coefficient moves broad regions as readily as single pixels: large strokes and
colour fields form early instead of emerging only from many small per-pixel moves. This is the
parameterisation of STROTSS and NNST (Kolkin et al. 2019, 2022; 8 levels in NNST). It changes how the
image moves, not what is minimised: the same terms, one forward and backward per step.

The pyramid is bilinear: down = halve the size, up = back to the finer level's size; detail level i
is the image at level i minus up(down(it)), and the coarsest level is the small image itself, so
`synthesize(decompose(x))` is x up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from nstcli.optim.engine import NonFiniteLoss, ScaleResult, StopRun
from nstcli.optim.optimizers import IterateAverage, OptimizerSettings
from nstcli.reports import Callback, StepReport
from nstcli.runtime import tune_for
from nstcli.terms.base import Term, evaluate


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def usable_levels(shape: Sequence[int], levels: int) -> int:
    """At most `levels`, fewer where halving again would leave a side below 2 pixels."""
    side = min(int(shape[-2]), int(shape[-1]))
    return max(1, min(levels, int(math.log2(max(side, 2)))))


def decompose(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """(1, C, H, W) -> [finest detail, ..., coarsest image]: `levels` detail levels and the residual."""
    out = []
    current = image
    for _ in range(usable_levels(image.shape, levels)):
        h, w = current.shape[-2:]
        smaller = _resize(current, (max(1, h // 2), max(1, w // 2)))
        out.append(current - _resize(smaller, (h, w)))
        current = smaller
    out.append(current)
    return out


def synthesize(pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
    """The image a pyramid from `decompose` describes."""
    current = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        current = detail + _resize(current, tuple(detail.shape[-2:]))
    return current


def optimize_pyramid(network, init: torch.Tensor, terms: Sequence[Term], settings: OptimizerSettings, *,
                     steps: int, callbacks: Sequence[Callback] = (), first_step: int = 1,
                     total_steps: int | None = None, scale: int = 0, average: float = 0.0) -> ScaleResult:
    """engine.optimize with the image's pyramid as the parameters (Adam; a new Adam at each scale, as
    moments of one scale's coefficients mean nothing at another size). Returns the last iterate
    (clamped to [0, 1]) or, with `average`, the running average of the iterates."""
    tune_for(init.device)
    precision = getattr(network, "precision", "fp32")
    levels = [level.detach().clone().requires_grad_(True)
              for level in decompose(init.detach().float(), settings.pyramid_levels)]
    opt = torch.optim.Adam(levels, lr=settings.lr, betas=settings.betas)
    total_steps = total_steps if total_steps is not None else steps
    scale_by = float(init.numel())  # as engine.Evaluation: gradients of order one (Adam does not mind)
    image = synthesize(levels).detach().clamp(0, 1)
    averaged = IterateAverage(image, average) if average else None
    last_terms: dict[str, float] = {}
    step = first_step - 1
    names = list(dict.fromkeys(term.name for term in terms))
    try:
        for step in range(first_step, first_step + steps):
            opt.zero_grad(set_to_none=True)
            # The network sees the pyramid's image as it is (unclamped, as NNST): clamping would cut
            # the gradient of every coefficient under a saturated pixel.
            current = synthesize(levels).contiguous(memory_format=torch.channels_last)
            total, parts = evaluate(terms, network(current), current)
            (total * scale_by).backward()
            opt.step()
            numbers = torch.stack([total.detach()] + [parts[name].detach() for name in names]).tolist()
            loss, last_terms = numbers[0], dict(zip(names, numbers[1:]))
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"the loss became {loss} at step {step}; lower --lr or the loss weights", step)
            with torch.no_grad():
                image = synthesize(levels).clamp_(0, 1)
            if averaged is not None:
                averaged.update(image)
                image = averaged.value
            report = StepReport(step=step, total=total_steps, loss=loss, terms=last_terms, image=image,
                                scale=scale, size=(image.shape[-2], image.shape[-1]), precision=precision)
            for callback in callbacks:
                callback.on_step(report)
    except KeyboardInterrupt:
        raise StopRun(image.clone(), step) from None
    return ScaleResult(image.detach().clone(), None, last_terms, steps=steps)
