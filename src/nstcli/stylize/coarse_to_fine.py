"""One image painted scale after scale: each scale's terms built (terms/builder.py), the engine run on
them (tiling/run.py's tiles at a scale too large for memory), the image and Adam's moments carried
up to the next scale."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from nstcli.image import colour
from nstcli.image.io import pil_to_tensor, prepare, resize_longest, resize_tensor
from nstcli.network.features import VGGFeatures
from nstcli.optim.engine import optimize
from nstcli.optim.optimizers import resize_state
from nstcli.optim.pyramid import optimize_pyramid
from nstcli.optim.run import Run, RunSettings
from nstcli.reports import notify
from nstcli.stylize.masks import SpatialControl
from nstcli.stylize.styles import PreparedStyle
from nstcli.terms.base import Term
from nstcli.terms.builder import build_objective
from nstcli.terms.settings import LossSettings
from nstcli.tiling.plan import describe_tiling
from nstcli.tiling.run import adam_settings, optimize_tiled
from nstcli.tiling.window import TileWindow

# Extra terms per scale (e.g. video's temporal term): called with the scale's (height, width) and device.
ExtraTerms = Callable[[tuple[int, int], torch.device], Sequence[Term]]


def initial_image(kind: str, content: torch.Tensor, style: Callable[[], torch.Tensor], seed: int) -> torch.Tensor:
    """The first scale's starting image: the content, the (first) style resized to it, or noise."""
    if kind == "content":
        return content.clone()
    if kind == "style":
        # Copy: at the same shape resize_tensor returns `style` itself, which the optimiser would
        # then update in place, corrupting a style tensor that PreparedStyle reuses.
        return resize_tensor(style(), tuple(content.shape[-2:])).clone()
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(content.shape, generator=generator).to(content.device)


@dataclass(frozen=True)
class Schedule:
    """Every scale of a run (stylize.single.plan_scales): longest side, shape, steps, tile side or None."""

    sizes: Sequence[int]
    shapes: Sequence[tuple[int, int]]
    steps: Sequence[int]
    tiling: Sequence[int | None]


@dataclass(frozen=True)
class CoarseToFine:
    """What every scale of one image shares."""

    network: VGGFeatures
    content: Image.Image
    style: PreparedStyle
    loss: LossSettings
    settings: RunSettings
    style_scale: float
    need: int  # the smallest side the deepest layer sees (network/load.min_side)
    device: torch.device
    masks: SpatialControl | None = None
    extra_terms: ExtraTerms | None = None

    def objective(self, size: int, shape: tuple[int, int], tile: int | None):
        """(content image, content target, terms) of the scale of longest side `size`."""
        content = prepare(pil_to_tensor(resize_longest(self.content, size)), self.device)
        style_size = round(size * self.style_scale)
        window = None
        if tile:
            window = TileWindow.for_styles(self.network, tile, self.need, [i.size for i in self.style.images()],
                                           style_size)
        guides = self.masks.guides(content.shape[-2:], self.device) if self.masks is not None else None
        styles = self.style.at(self.loss, self.network, style_size, self.need, self.device)
        target, terms = build_objective(self.loss, self.network, content, styles, guides=guides, window=window)
        if self.extra_terms is not None:
            terms += list(self.extra_terms(shape, self.device))
        return content, target, terms

    def start(self, image: torch.Tensor | None, target: torch.Tensor, size: int, shape: tuple[int, int]):
        """Where a scale starts: the previous scale's image resized, or the run's first image."""
        if image is not None:
            return prepare(resize_tensor(image.to(self.device), shape), self.device)
        style_size = round(size * self.style_scale)
        first_style = lambda: self.style.tensors(style_size, self.need, self.device)[0]  # noqa: E731
        return initial_image(self.settings.init, target, first_style, self.settings.seed)

    def paint(self, schedule: Schedule, run: Run, init: torch.Tensor | None = None) -> torch.Tensor:
        """Every scale in turn; the final image (recoloured with the content's colours under `luminance` or `oklab`)."""
        image, state, content, first = init, None, None, 1
        total = sum(schedule.steps)
        optimizer = self.settings.optimizer_settings
        for index, (size, shape, count, tile) in enumerate(zip(schedule.sizes, schedule.shapes, schedule.steps,
                                                               schedule.tiling)):
            content, target, terms = self.objective(size, shape, tile)
            start = self.start(image, target, size, shape)
            state = resize_state(state, shape)
            run.sizes.append(shape)
            run.tiling.append(describe_tiling(shape, tile, self.need))
            common = {"steps": count, "callbacks": run.watchers, "first_step": first, "total_steps": total,
                      "scale": index, "state": state}
            if tile:  # the same scale, tile by tile with Adam (tiling/run.py)
                scale = optimize_tiled(self.network, start, terms, adam_settings(optimizer), tile=tile,
                                       align=self.need, **common)
            elif optimizer.pyramid_levels:  # the image as a Laplacian pyramid (optim/pyramid.py)
                del common["state"]  # a new Adam per scale: moments of coefficients do not resize
                scale = optimize_pyramid(self.network, start, terms, optimizer, average=self.settings.average,
                                         **common)
            else:
                scale = optimize(self.network, start, terms, optimizer, average=self.settings.average,
                                 plateau=self.settings.plateau, **common)
            run.scale_steps.append({"given": count, "ran": scale.steps, "stopped": scale.stopped})
            notify(run.watchers, "on_scale_end", index, scale.steps, count, scale.stopped)
            image, state, first = scale.image, scale.state, first + scale.steps
        if self.loss.preserve_color == "luminance":
            image = colour.recombine(image, content)
        elif self.loss.preserve_color == "oklab":
            image = colour.oklab_chroma(image, content)
        return image
