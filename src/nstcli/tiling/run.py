"""Running one scale tile by tile, so any output size fits in the memory of one tile.

At a scale too large for the memory budget the image is cut into overlapping square tiles, and a
step is one pass over all of them: each tile takes one Adam step through `engine.optimize` with the
terms built for it, and its result is blended into the whole image under feathered weights (linear
ramps across each overlap; the ramps of neighbouring tiles add up to 1). The grid moves at every
step (offsets from a van der Corput sequence, base 2 down and base 3 across), so no seam stays in
one place. Every pixel is updated once per step, as without tiles, so steps, checkpoints and
progress mean the same either way.

What makes a tile's loss the whole image's loss at that place:
- The terms read only the tile's interior, their targets the whole image's, cut to the tile
  (tiling/window.py; the grid, its margins and ramps in tiling/grid.py).
- Adam, not L-BFGS: L-BFGS's curvature pairs describe the whole vector of pixels and mean nothing
  after a move to another tile. Adam's moments are kept for the whole image and cut per tile, so
  a tile continues exactly where the last step over it left off, and they carry across scales as
  they do without tiles. (Restarting them at each visit would make every visit's step a first
  step, as large as the learning rate everywhere.) Iterate averaging is not applied at tiled scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nstcli.optim.engine import ScaleResult, StopRun, optimize
from nstcli.reports import Callback, StepReport
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.network.features import VGGFeatures
from nstcli.terms.base import Term
from nstcli.tiling.grid import layout, margin_and_overlap
from nstcli.tiling.window import Interior

ADAM_LR = 0.02  # Adam's default learning rate when the run's optimiser is L-BFGS


def adam_settings(settings: OptimizerSettings) -> OptimizerSettings:
    """The run's optimiser settings as tiles use them: Adam, at its default rate if the run asked for L-BFGS."""
    return OptimizerSettings("adam", settings.lr if settings.name == "adam" else ADAM_LR, settings.betas)


class _Last(Callback):
    def __init__(self):
        self.report = None

    def on_step(self, report: StepReport) -> None:
        self.report = report


def optimize_tiled(network: VGGFeatures, init: torch.Tensor, terms: Sequence[Term], settings: OptimizerSettings,
                   *, tile: int, align: int, steps: int, callbacks: Sequence[Callback] = (),
                   first_step: int = 1, total_steps: int | None = None, scale: int = 0,
                   state: dict | None = None) -> ScaleResult:
    """engine.optimize for a scale too large for memory: `steps` passes over moving tiles (see above).

    Terms with an `at(tile)` method (position-dependent targets) give one term per tile; the others
    are used as they are. Each is evaluated on the tile's interior only. Unlike the engine, this
    updates `init` in place when its layout allows (an NHWC-contiguous, i.e. channels_last, tensor):
    at these sizes a copy of the image is what tiling saves memory for; pass a tensor of your own.
    """
    height, width = init.shape[-2:]
    _, overlap = margin_and_overlap(tile)
    total_steps = total_steps if total_steps is not None else steps
    image = init.detach().permute(0, 2, 3, 1)
    if not image.is_contiguous():
        image = image.contiguous()
    if state is None:
        state = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(image), "exp_avg_sq": torch.zeros_like(image)}
    moments = (state["exp_avg"].to(image.device), state["exp_avg_sq"].to(image.device))
    counted = float(state["step"])
    last: dict[str, float] = {}
    step = first_step - 1
    try:
        for step in range(first_step, first_step + steps):
            tiles = layout((height, width), tile, align, step - first_step)
            area, loss, values = 0, 0.0, {}
            for piece in tiles:
                cy0, cy1, cx0, cx1 = piece.crop
                box = (slice(None), slice(cy0, cy1), slice(cx0, cx1))
                # A guided style term whose region misses this tile gives None there: no term.
                cut = [term.at(piece) if hasattr(term, "at") else term for term in terms]
                tile_terms = [Interior(term, piece, (cy0, cx0)) for term in cut if term is not None]
                tile_state = {"step": torch.tensor(counted), "exp_avg": moments[0][box].clone(),
                              "exp_avg_sq": moments[1][box].clone()}
                seen = _Last()
                result = optimize(network, image[box].permute(0, 3, 1, 2), tile_terms, settings, steps=1,
                                  callbacks=[seen], first_step=step, total_steps=total_steps, scale=scale,
                                  state=tile_state, last=True)
                y0, y1, x0, x1 = piece.interior
                inner = (slice(None), slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
                weight = piece.weight(height, width, overlap).to(image.device)
                target = (slice(None), slice(y0, y1), slice(x0, x1))
                image[target].lerp_(result.image.permute(0, 2, 3, 1)[inner], weight)
                for whole, part in zip(moments, (result.state["exp_avg"], result.state["exp_avg_sq"])):
                    whole[target].lerp_(part[inner], weight)
                # The step's loss: the tiles' losses weighted by the share of the image each owns.
                oy0, oy1, ox0, ox1 = piece.own
                share = (oy1 - oy0) * (ox1 - ox0)
                area += share
                loss += share * seen.report.loss
                for name, value in seen.report.terms.items():
                    values[name] = values.get(name, 0.0) + share * value
            counted += 1
            last = {name: value / area for name, value in values.items()}
            report = StepReport(step=step, total=total_steps, loss=loss / area, terms=last,
                                image=image.permute(0, 3, 1, 2), scale=scale, size=(height, width),
                                tiles=len(tiles), precision=seen.report.precision)
            for callback in callbacks:
                callback.on_step(report)
    except (StopRun, KeyboardInterrupt):
        # Ctrl-C inside a tile: the whole image as it stands is what there is to save.
        raise StopRun(image.permute(0, 3, 1, 2).clone(), step - 1 if step >= first_step else step) from None
    carried = {"step": torch.tensor(counted), "exp_avg": moments[0], "exp_avg_sq": moments[1]}
    return ScaleResult(image.permute(0, 3, 1, 2), carried, last, steps=steps)
