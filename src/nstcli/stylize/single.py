"""Stylise one image: what `api.stylize` is, and what batch and video call for each image or frame.

`stylize` plans the run (single_plan.py: every input read and checked, the scales planned, each
family's settings picked from the `Config` once), then `run_stylize` runs the plan: it loads the
network and hands the scales to coarse_to_fine.py, which has terms/builder.py build each scale's
terms and runs the engine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from nstcli.config.fields import Config
from nstcli.image.io import save_image
from nstcli.image.sheets import save_extras
from nstcli.network.load import load_network
from nstcli.network.sources import warn_if_random
from nstcli.optim.run import Run, StylizeResult, out_of_memory_as_run_error
from nstcli.reports import Callback
from nstcli.stylize.coarse_to_fine import CoarseToFine, ExtraTerms
from nstcli.stylize.masks import SpatialControl
from nstcli.stylize.single_plan import StylizePlan, plan_stylize
from nstcli.stylize.styles import PreparedStyle

PathLike = str | os.PathLike


def stylize(
    content: PathLike | Image.Image,
    styles: PathLike | Sequence[PathLike] | PreparedStyle,
    output: PathLike | None = None,
    config: Config = Config(),
    callbacks: Sequence[Callback] = (),
    no_clobber: bool = False,
    save_on_interrupt: bool = True,
    *,
    init: torch.Tensor | None = None,
    extra_terms: ExtraTerms | None = None,
    masks: SpatialControl | None = None,
) -> StylizeResult:
    """Repaint `content` in the style of `styles`; write `output` (atomically) if given.

    `content` is a path or a decoded RGB image; `styles` one or more image paths, or a
    `PreparedStyle` whose targets are reused. `init` starts the first scale from that image
    (resized) instead of `config.init`; `extra_terms` adds terms at every scale; `masks` says
    where each style paints and how much of the photo each part keeps (masks.py).
    `save_on_interrupt=False` leaves `output` unwritten on Ctrl-C (a batch must not take an
    unfinished image for a finished one when it resumes).
    """
    plan = plan_stylize(content, styles, output, config, no_clobber=no_clobber, extra_terms=extra_terms is not None,
                        masks=masks)
    return run_stylize(plan, callbacks, save_on_interrupt=save_on_interrupt, init=init, extra_terms=extra_terms)


def run_stylize(plan: StylizePlan, callbacks: Sequence[Callback] = (), *, save_on_interrupt: bool = True,
                init: torch.Tensor | None = None, extra_terms: ExtraTerms | None = None) -> StylizeResult:
    """Run a planned stylization: load the network, paint every scale, save the output and its extras."""
    with out_of_memory_as_run_error(plan.size):
        warn_if_random(plan.network.weights)
        network = load_network(plan.network, plan.device, plan.precision, callbacks)
        torch.manual_seed(plan.run.seed)
        run = Run(plan.run, plan.output, callbacks)
        for watcher in run.watchers:
            watcher.on_schedule(list(zip(plan.schedule.steps, plan.schedule.shapes)))
        painting = CoarseToFine(plan, network, extra_terms)
        total = sum(plan.schedule.steps)
        image = run.execute(total, lambda: painting.paint(run, init),
                            save_to=plan.output if save_on_interrupt else None, no_clobber=plan.no_clobber)
        image = image.detach().float().cpu().contiguous()
        extras: list[Path] = []
        if plan.output is not None:
            save_image(image, plan.output, no_clobber=plan.no_clobber)
            extras = save_extras(plan.output, run.saver, run.log, sheet=plan.run.contact_sheet,
                                 curve=plan.run.loss_curve)
        ran = sum(scale["ran"] for scale in run.scale_steps)  # fewer than `total` where a scale stopped on a plateau
        return run.result(image, plan.output, ran, plan.device, extras, precision=plan.precision)
