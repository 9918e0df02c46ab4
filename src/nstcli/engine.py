"""The optimisation loop. Silent: it reports every step to callbacks and never prints.

Cost model: one step is one VGG19 forward plus one backward to the input pixels. Everything else is
arranged so that nothing else costs anything measurable: the network is frozen (no weight gradients)
and cut after the deepest layer used, content features and style Gram matrices are computed once per
scale without autograd, and for L-BFGS one step is one function evaluation (no line search), so
`steps` counts exactly the forward+backward passes the run pays for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nstcli.errors import RunError
from nstcli.features import VGGFeatures
from nstcli.lbfgs import LBFGS
from nstcli.losses import content_loss, gram_matrix, gram_style_loss, tv_loss
from nstcli.runtime import tune_for


@dataclass
class StepReport:
    """What the engine tells callbacks after each step."""

    step: int  # 1-based, counted across all scales
    total: int  # steps in the whole run
    loss: float
    content: float  # alpha * content term
    style: float  # beta * style term
    tv: float
    image: torch.Tensor  # the current image (1, 3, H, W) in [0, 1]; do not modify, clone to keep
    scale: int = 0  # index of the current scale (coarse-to-fine), 0 for single-scale runs
    size: tuple[int, int] = (0, 0)  # (height, width) of the current scale


class Callback:
    """Receives progress from the engine. Subclass and override what you need."""

    def on_start(self, total_steps: int) -> None:
        pass

    def on_step(self, report: StepReport) -> None:
        pass

    def on_end(self) -> None:
        pass


@dataclass
class Objective:
    """What the image is optimised towards at one scale: targets computed once, then reused."""

    content_targets: dict[str, torch.Tensor]
    style_targets: dict[str, torch.Tensor]  # blended Gram matrices
    content_weight: float
    style_weight: float
    style_layer_weights: dict[str, float]
    tv_weight: float = 0.0
    extra: dict = field(default_factory=dict)


class NonFiniteLoss(RunError):
    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class StopRun(Exception):
    """Raised by the loop when interrupted; carries the last good image and the step reached."""

    def __init__(self, image: torch.Tensor, step: int):
        super().__init__(step)
        self.image = image
        self.step = step


def resolve_device(name: str) -> torch.device:
    from nstcli.errors import ConfigError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("'device' is cuda but no CUDA GPU is available; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("'device' is mps but Apple's MPS backend is not available; use --device auto or cpu")
    return torch.device(name)


def prepare(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an image to the device in the memory layout the convolutions run fastest in."""
    # channels_last lets oneDNN (CPU) and cuDNN (GPU) skip layout conversions in every conv.
    return image.to(device).contiguous(memory_format=torch.channels_last)


# Targets are computed under no_grad, not inference_mode: the latter saves nothing measurable here (two
# forwards per run) but makes "inference tensors" that autograd refuses to save for backward, so any
# loss that keeps its target for the backward (F.mse_loss, a product with the target) would fail.
@torch.no_grad()
def content_targets(network: VGGFeatures, content: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    features = network(content)
    return {name: features[name].detach() for name in layers}


@torch.no_grad()
def style_targets(network: VGGFeatures, styles: list[torch.Tensor], blend: list[float], layers) -> dict[str, torch.Tensor]:
    """Blend the styles' Gram matrices with weights `blend` (normalised to sum to 1)."""
    total = sum(blend)
    grams: dict[str, torch.Tensor] = {}
    for style, weight in zip(styles, blend):
        if weight == 0:
            continue
        features = network(style)
        for name in layers:
            gram = gram_matrix(features[name]) * (weight / total)
            grams[name] = gram if name not in grams else grams[name] + gram
    return grams


def objective_loss(network: VGGFeatures, image: torch.Tensor, objective: Objective):
    """Total loss and its terms (weighted) for the current image."""
    features = network(image)
    content = image.new_zeros(())
    for name, target in objective.content_targets.items():
        content = content + content_loss(features[name], target)
    style = image.new_zeros(())
    for name, target in objective.style_targets.items():
        style = style + objective.style_layer_weights[name] * gram_style_loss(features[name], target)
    content = objective.content_weight * content
    style = objective.style_weight * style
    total = content + style
    tv = image.new_zeros(())
    if objective.tv_weight:
        tv = objective.tv_weight * tv_loss(image)
        total = total + tv
    return total, content, style, tv


def make_optimizer(name: str, image: torch.Tensor, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam([image], lr=lr)
    # One iteration per step() and no line search: each step is exactly one forward+backward, as in
    # jcjohnson/neural-style, and it never quietly stops before `steps`. nstcli's own L-BFGS takes the
    # same steps as torch.optim.LBFGS(max_iter=1) in a few large operations instead of hundreds of
    # small ones (see lbfgs.py).
    return LBFGS([image], lr=lr, history_size=lbfgs_history(image.numel()))


LBFGS_HISTORY_BYTES = 1 << 30
DIVERGENCE_FACTOR = 10.0  # a step whose loss is this many times the best so far means L-BFGS diverged


def lbfgs_history(values: int) -> int:
    """Correction pairs to keep: 100 (jcjohnson/neural-style's default) while they fit in 1 GiB.

    Each pair is two float32 copies of the image: at 2048 x 1365 px, 100 pairs would be 6.7 GB (16
    fit in 1 GiB), more than the network's activations. Past a few dozen pairs the extra curvature
    information buys little (scipy's L-BFGS-B keeps 10).
    """
    return max(5, min(100, LBFGS_HISTORY_BYTES // (2 * 4 * values)))


def optimise(
    network: VGGFeatures,
    init: torch.Tensor,
    objective: Objective,
    *,
    optimizer: str,
    lr: float,
    steps: int,
    callbacks: list[Callback] = (),
    first_step: int = 1,
    total_steps: int | None = None,
    scale: int = 0,
) -> torch.Tensor:
    """Optimise the pixels of `init` for `steps` steps; returns the lowest-loss image seen (detached)."""
    tune_for(init.device)
    # The optimised tensor is stored NHWC and contiguous; its NCHW view is then channels_last, which
    # the convolutions want, while L-BFGS still gets the flat contiguous gradient it requires.
    # A copy, always: for a channels_last `init`, .contiguous() would return init's own memory and
    # the optimiser would overwrite the caller's image.
    pixels = init.detach().permute(0, 2, 3, 1).clone(memory_format=torch.contiguous_format)
    pixels.requires_grad_(True)
    opt = make_optimizer(optimizer, pixels, lr)
    total_steps = total_steps if total_steps is not None else steps
    last_good = init.detach().clone()
    terms: dict[str, torch.Tensor] = {}

    # The loss terms are means, so per-pixel gradients are tiny (~1e-6) and torch's L-BFGS would
    # treat every curvature pair as noise (it drops pairs with s.y < 1e-10) and crawl along the raw
    # gradient. Scaling by the number of pixel values gives gradients of order one, as the sum-based
    # losses of the original implementations did; the optimum is unchanged and Adam is
    # scale-invariant. Reported losses stay unscaled.
    grad_scale = float(pixels.numel())
    # The lowest-loss image evaluated so far: what the run returns, and where a diverging L-BFGS
    # restarts from.
    best_pixels = pixels.detach().clone()
    evaluated = pixels.detach().clone()  # the image the closure saw this step
    best_loss = math.inf

    def closure():
        opt.zero_grad(set_to_none=True)
        # Take the view afresh each call: a view made once goes stale after the optimiser's in-place
        # update and no longer passes gradients back to `pixels`.
        image = pixels.permute(0, 3, 1, 2)
        total, content, style, tv = objective_loss(network, image, objective)
        (total * grad_scale).backward()
        terms.update(total=total.detach(), content=content.detach(), style=style.detach(), tv=tv.detach())
        # A copy, not a comparison: reading the loss here would add a host sync per evaluation.
        evaluated.copy_(pixels.detach())
        return total.detach() * grad_scale

    step = first_step - 1
    try:
        for step in range(first_step, first_step + steps):
            opt.step(closure)
            # One device-to-host copy for the four numbers (each float() would wait for the GPU).
            loss, content, style, tv = torch.stack(
                [terms["total"], terms["content"], terms["style"], terms["tv"]]).tolist()
            if not math.isfinite(loss):
                raise NonFiniteLoss(
                    f"the loss became {loss} at step {step}; lower --lr or the loss weights", step)
            if loss < best_loss:
                best_loss = loss
                best_pixels, evaluated = evaluated, best_pixels
            if optimizer == "lbfgs" and loss > DIVERGENCE_FACTOR * best_loss:
                # Without a line search L-BFGS can overshoot into a region where its curvature
                # model is wrong and keep going (seen on tiny images). Restart from the best image
                # with an empty history; a run that behaves never gets here.
                with torch.no_grad():
                    pixels.copy_(best_pixels)
                opt = make_optimizer(optimizer, pixels, lr)
            with torch.no_grad():
                pixels.clamp_(0.0, 1.0)
            last_good = pixels.detach().permute(0, 3, 1, 2)
            report = StepReport(
                step=step, total=total_steps, loss=loss, content=content, style=style, tv=tv,
                image=last_good, scale=scale,
                size=(last_good.shape[-2], last_good.shape[-1]))
            for callback in callbacks:
                callback.on_step(report)
    except KeyboardInterrupt:
        raise StopRun(last_good.clone(), step) from None
    if not math.isfinite(best_loss):  # no step taken
        return pixels.detach().permute(0, 3, 1, 2)
    return best_pixels.permute(0, 3, 1, 2)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample an intermediate result to the next scale (bicubic, kept in [0, 1])."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp_(0, 1)
