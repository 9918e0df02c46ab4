"""The optimisation loop. Silent: it reports every step to callbacks and never prints.

It receives a network, a starting image, the loss terms of one scale and optimiser settings; it
minimises the sum of the terms and returns. It knows no term by name: what the objective is, where
the targets come from, the device, resizing and saving all live elsewhere.

Cost model: one step is one VGG19 forward plus one backward to the input pixels. The network is
frozen (no weight gradients) and cut after the deepest layer used, the terms' targets are computed
once per scale, and for L-BFGS one step is one function evaluation (no line search), so `steps`
counts exactly the forward+backward passes the run pays for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from nstcli.errors import RunError
from nstcli.network.features import VGGFeatures
from nstcli.optim.optimizers import IterateAverage, OptimizerSettings, carried_state, make_optimizer
from nstcli.optim.stopping import PLATEAU, RAN_OUT, Plateau
from nstcli.reports import Callback, StepReport
from nstcli.runtime import tune_for
from nstcli.terms.base import Term, evaluate


@dataclass
class ScaleResult:
    """What one call of `optimise` leaves: the image and, for Adam, the moments to carry on with."""

    image: torch.Tensor  # (1, 3, H, W), detached
    state: dict | None = None
    terms: dict[str, float] = field(default_factory=dict)  # the last step's values
    steps: int = 0  # the steps it ran: fewer than it was given when it stopped on a plateau
    stopped: str = RAN_OUT  # why it ended (optim/stopping.py)


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


DIVERGENCE_FACTOR = 10.0  # a step whose loss is this many times the best so far means L-BFGS diverged


class Lowest:
    """The lowest-loss image evaluated so far: what the run returns, and where a diverging L-BFGS
    restarts from. The closure copies each evaluated image into `evaluated` (a copy, not a comparison:
    reading the loss there would add a host sync per evaluation); `update` keeps it if it was lower."""

    def __init__(self, pixels: torch.Tensor):
        self.pixels = pixels.detach().clone()
        self.evaluated = pixels.detach().clone()  # the image the closure saw this step
        self.loss = math.inf

    def update(self, loss: float) -> None:
        if loss < self.loss:
            self.loss = loss
            self.pixels, self.evaluated = self.evaluated, self.pixels


class Evaluation:
    """The optimisers' closure: the summed terms at the current pixels, and their gradient.

    The loss terms are means, so per-pixel gradients are tiny (~1e-6) and L-BFGS would treat every
    curvature pair as noise and crawl along the raw gradient. Scaling by the number of pixel values
    gives gradients of order one, as the sum-based losses of the original implementations did; the
    optimum is unchanged and Adam is scale-invariant. Reported losses stay unscaled.
    """

    def __init__(self, network: VGGFeatures, terms: Sequence[Term], pixels: torch.Tensor, lowest: Lowest):
        self.network, self.terms, self.pixels, self.lowest = network, terms, pixels, lowest
        self.grad_scale = float(pixels.numel())
        self.names = list(dict.fromkeys(term.name for term in terms))
        self.values: dict[str, torch.Tensor] = {}

    def __call__(self) -> torch.Tensor:
        self.pixels.grad = None  # what every optimiser's zero_grad(set_to_none=True) does to it
        # Take the view afresh each call: a view made once goes stale after the optimiser's in-place
        # update and no longer passes gradients back to `pixels`.
        image = self.pixels.permute(0, 3, 1, 2)
        total, parts = evaluate(self.terms, self.network(image), image)
        (total * self.grad_scale).backward()
        self.values["total"] = total.detach()
        self.values.update({name: value.detach() for name, value in parts.items()})
        self.lowest.evaluated.copy_(self.pixels.detach())
        return total.detach() * self.grad_scale

    def losses(self) -> tuple[float, dict[str, float]]:
        """(total, {term: value}) of the last evaluation, in one device-to-host copy (each float()
        would wait for the GPU)."""
        numbers = torch.stack([self.values["total"]] + [self.values[name] for name in self.names]).tolist()
        return numbers[0], dict(zip(self.names, numbers[1:]))


def chosen_image(pixels: torch.Tensor, lowest: Lowest, averaged: IterateAverage | None, last: bool) -> torch.Tensor:
    """What a scale returns (NHWC): the average, the last iterate, or the lowest-loss image evaluated."""
    if averaged is not None:
        return averaged.value
    if last or not math.isfinite(lowest.loss):  # asked for, or no step taken
        return pixels.detach()
    return lowest.pixels


def optimize(
    network: VGGFeatures,
    init: torch.Tensor,
    terms: Sequence[Term],
    settings: OptimizerSettings,
    *,
    steps: int,
    callbacks: Sequence[Callback] = (),
    first_step: int = 1,
    total_steps: int | None = None,
    scale: int = 0,
    average: float = 0.0,
    state: dict | None = None,
    last: bool = False,
    plateau: Plateau | None = None,
) -> ScaleResult:
    """Minimise the sum of `terms` over the pixels of `init` for `steps` steps.

    Returns the lowest-loss image evaluated or, with `average` > 0, the running average of the
    iterates with that decay. `state` continues Adam from a previous scale (see optimizers.py).
    `last` returns the last iterate instead: for a visit of one step (tiling/run.py), the best image
    evaluated would be the one it started from. `plateau` ends the scale early once its loss has
    stopped improving (optim/stopping.py); the result says how many steps ran and why it ended.
    """
    tune_for(init.device)
    precision = getattr(network, "precision", "fp32")
    # The optimised tensor is stored NHWC and contiguous; its NCHW view is then channels_last, which
    # the convolutions want, while L-BFGS still gets the flat contiguous gradient it requires.
    # A copy, always: for a channels_last `init`, .contiguous() would return init's own memory and
    # the optimiser would overwrite the caller's image.
    pixels = init.detach().permute(0, 2, 3, 1).clone(memory_format=torch.contiguous_format)
    pixels.requires_grad_(True)
    opt = make_optimizer(settings, pixels, state)
    total_steps = total_steps if total_steps is not None else steps
    averaged = IterateAverage(pixels.detach(), average) if average else None
    last_good = init.detach().clone()
    last_terms: dict[str, float] = {}
    lowest = Lowest(pixels)
    closure = Evaluation(network, terms, pixels, lowest)
    step = first_step - 1
    lowest_so_far: list[float] = []  # the lowest loss after each step, for the plateau rule
    stopped = RAN_OUT
    try:
        for step in range(first_step, first_step + steps):
            opt.step(closure)
            loss, last_terms = closure.losses()
            if not math.isfinite(loss):
                raise NonFiniteLoss(
                    f"the loss became {loss} at step {step}; lower --lr or the loss weights", step)
            lowest.update(loss)
            if settings.name == "lbfgs" and loss > DIVERGENCE_FACTOR * lowest.loss:
                # Without a line search L-BFGS can overshoot into a region where its curvature
                # model is wrong and keep going (seen on tiny images). Restart from the best image
                # with an empty history; a run that behaves never gets here.
                with torch.no_grad():
                    pixels.copy_(lowest.pixels)
                opt = make_optimizer(settings, pixels)
            with torch.no_grad():
                pixels.clamp_(0.0, 1.0)
            if averaged is not None:
                averaged.update(pixels.detach())
                last_good = averaged.value.permute(0, 3, 1, 2)
            else:
                last_good = pixels.detach().permute(0, 3, 1, 2)
            report = StepReport(step=step, total=total_steps, loss=loss, terms=last_terms, image=last_good,
                                scale=scale, size=(last_good.shape[-2], last_good.shape[-1]), precision=precision)
            for callback in callbacks:
                callback.on_step(report)
            lowest_so_far.append(lowest.loss)
            if plateau is not None and plateau.reached(lowest_so_far):
                stopped = PLATEAU
                break
    except KeyboardInterrupt:
        raise StopRun(last_good.clone(), step) from None
    image = chosen_image(pixels, lowest, averaged, last)
    return ScaleResult(image.permute(0, 3, 1, 2), carried_state(opt, pixels), last_terms,
                       steps=step - first_step + 1, stopped=stopped)
