"""Stylise one image: what `api.stylize` is, and what batch and video call for each image or frame.

`stylize` reads and checks every input, plans the scales, loads the network, and hands the scales to
coarse_to_fine.py, which has terms/builder.py build each scale's terms and runs the engine. The
`Config` stops here: each family below receives the settings it reads, picked from it once
(`LossSettings`, `ScaleSettings`, `TileSettings`, `RunSettings`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from nstcli.config.fields import Config
from nstcli.errors import ConfigError
from nstcli.image.io import (
    check_output_path,
    fit_longest,
    open_image,
    refuse_overwriting_inputs,
    save_image,
)
from nstcli.image.sheets import save_extras
from nstcli.network.load import layers_needed, load_network, min_side
from nstcli.network.sources import warn_if_random
from nstcli.optim.callbacks import check_checkpoint_folder, replaced_beside
from nstcli.reports import Callback
from nstcli.optim.run import Run, RunSettings, StylizeResult, out_of_memory_as_run_error
from nstcli.runtime import resolve_device, resolve_precision
from nstcli.stylize.coarse_to_fine import CoarseToFine, ExtraTerms, Schedule
from nstcli.stylize.masks import SpatialControl
from nstcli.stylize.sizes import ScaleSettings, fit_to_size, scale_sizes, steps_per_scale
from nstcli.stylize.styles import PreparedStyle
from nstcli.terms.settings import LossSettings
from nstcli.tiling.plan import TileSettings, plan as plan_tiles

PathLike = str | os.PathLike


def plan_scales(config: Config, content_size: tuple[int, int], style: PreparedStyle, device: torch.device, *,
                extra_terms: bool = False, masks: SpatialControl | None = None):
    """(sizes, shapes, steps, tiling) of a run on a content of `content_size` (width, height).

    Decided, or refused with a ConfigError, before any work: `nst video` calls it for its first and
    later frames before it creates anything, so a run it would refuse at frame 2 costs nothing.
    """
    need = min_side(config)
    scales = config.pick(ScaleSettings)

    def shape_at(size: int) -> tuple[int, int]:
        width, height = fit_longest(content_size, size)
        return height, width

    # Coarse scales too small for the deepest layer are skipped rather than refused: start_size is
    # a starting point, and for a very wide image the first useful scale is simply a larger one.
    sizes = [size for size in scale_sizes(scales) if min(shape_at(size)) >= need]
    shapes = [shape_at(size) for size in sizes]
    steps = steps_per_scale(scales, sizes)
    # Which scales run in tiles, from the memory they need: decided (or refused) before any work.
    tiling = plan_tiles(config.pick(TileSettings), shapes, [image.size for image in style.images()], steps, device,
                        layers=layers_needed(config), align=need)
    if any(tiling) and (extra_terms or (masks is not None and masks.guides_styles and config.style_loss != "gram")):
        what = "extra terms (video)" if extra_terms else "masks with --style-loss wasserstein"
        if config.tile:
            # The tiles were asked for: only --tile can undo them (a larger budget changes nothing).
            height, width = shapes[[bool(t) for t in tiling].index(True)]
            raise ConfigError(f"--tile {config.tile} would run the {width}x{height} px scale in tiles, which runs "
                              f"with {what} cannot use yet; drop --tile (or give --tile 0)")
        raise ConfigError(f"--size {config.size} needs tiles, which runs with {what} cannot use yet; lower "
                          "--size or raise --max-memory")
    return sizes, shapes, steps, tiling


def check_inputs(content: PathLike | Image.Image, style: PreparedStyle, output: PathLike | None, config: Config,
                 no_clobber: bool, masks: SpatialControl | None) -> tuple[Path | None, Image.Image]:
    """(output, content image): every input read and size-checked before the network is loaded (maybe
    downloaded), the output path checked before any work."""
    if output is not None:
        output = check_output_path(output, no_clobber=no_clobber)
        refuse_overwriting_inputs(output, [content, *style.paths],
                                  also=replaced_beside(output, checkpoints=bool(config.checkpoint_every)))
        if config.checkpoint_every:
            check_checkpoint_folder(output)
    need = min_side(config)
    content_image = content if isinstance(content, Image.Image) else open_image(content)
    content_name = "the content frame" if isinstance(content, Image.Image) else content
    fit_to_size(content_name, content_image, config.size, need)
    if masks is not None:
        masks.check(style.paths, output, content_image.size, style_blend=config.style_blend)
    style_final = max(1, round(config.size * config.style_scale))
    for path, image in zip(style.paths, style.images()):
        fit_to_size(path, image, style_final, need, scale=config.style_scale)
    return output, content_image


@out_of_memory_as_run_error
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
    style = styles if isinstance(styles, PreparedStyle) else PreparedStyle(styles, config.style_blend)
    output, content_image = check_inputs(content, style, output, config, no_clobber, masks)
    device = resolve_device(config.device)
    schedule = Schedule(*plan_scales(config, content_image.size, style, device, extra_terms=extra_terms is not None,
                                     masks=masks))
    precision = resolve_precision(config.precision, device)
    warn_if_random(config.weights)
    need = min_side(config)
    network = load_network(config, device, precision=precision, callbacks=callbacks)
    torch.manual_seed(config.seed)
    settings = config.pick(RunSettings)
    run = Run(settings, output, callbacks)
    for watcher in run.watchers:
        watcher.on_schedule(list(zip(schedule.steps, schedule.shapes)))
    painting = CoarseToFine(network, content_image, style, config.pick(LossSettings), settings, config.style_scale, need,
                            device, masks, extra_terms)
    total = sum(schedule.steps)
    image = run.execute(total, lambda: painting.paint(schedule, run, init),
                        save_to=output if save_on_interrupt else None, no_clobber=no_clobber)
    image = image.detach().float().cpu().contiguous()
    extras: list[Path] = []
    if output is not None:
        save_image(image, output, no_clobber=no_clobber)
        extras = save_extras(output, run.saver, run.log, sheet=settings.contact_sheet, curve=settings.loss_curve)
    return run.result(image, output, total, device, extras, precision=precision)

