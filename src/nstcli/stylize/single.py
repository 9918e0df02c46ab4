"""Stylise one image: what `api.stylize` is, and what batch and video call for each image or frame.

`stylize` reads and checks every input, loads the network, then at each scale builds the loss
terms (terms/objective.py, styles.py) and hands them to the engine, carrying the image (and Adam's
moments) from scale to scale. `reconstruct` (reconstruct.py) and `batch`/`video` are thin loops
around the same pieces.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from nstcli.image import colour
from nstcli.tiling import tiles
from nstcli.network.sources import warn_if_random
from nstcli.optim.callbacks import check_checkpoint_folder, replaced_beside
from nstcli.config.fields import Config
from nstcli.optim.engine import Callback, optimize
from nstcli.errors import ConfigError
from nstcli.image.io import (
    check_output_path,
    open_image,
    pil_to_tensor,
    prepare,
    refuse_overwriting_inputs,
    resize_longest,
    resize_tensor,
    save_image,
)
from nstcli.stylize.masks import SpatialControl
from nstcli.network.load import load_network, min_side
from nstcli.terms.objective import content_term, pixel_terms, style_term_for
from nstcli.optim.optimizers import OptimizerSettings, resize_state
from nstcli.optim.run import Run, StylizeResult, out_of_memory_as_run_error
from nstcli.runtime import resolve_device, resolve_precision
from nstcli.image.sheets import save_extras
from nstcli.stylize.sizes import fit_to_size, scale_sizes, steps_per_scale
from nstcli.stylize.styles import PreparedStyle
from nstcli.terms.base import Term

PathLike = str | os.PathLike
# Extra terms per scale (e.g. video's temporal term): called with the scale's (height, width) and device.
ExtraTerms = Callable[[tuple[int, int], torch.device], Sequence[Term]]


def optimizer_settings(config: Config) -> OptimizerSettings:
    return OptimizerSettings(config.optimizer, config.learning_rate, tuple(config.adam_betas))


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


def scale_terms(config: Config, network, style: PreparedStyle, content: torch.Tensor, style_size: int,
                need: int, device: torch.device, masks: SpatialControl | None = None
                ) -> tuple[torch.Tensor, list[Term]]:
    """(content target, terms) of one scale: content, style and pixel terms, colours handled.

    With `masks` (checked), each style gets a guided term over its region and the content term its
    weight map.
    """
    guided = masks is not None and masks.guides_styles
    if config.preserve_color == "none":
        target = content
        if guided:
            style_losses = masks.style_terms(config, network, style.tensors(style_size, need, device),
                                             target.shape[-2:], device)
        else:
            style_losses = [style.term(config, network, style_size, need, device)]
    else:
        # The style is recoloured to match this content image, so its targets are this run's own.
        target, recoloured = colour.colour_targets(config.preserve_color, content,
                                                   style.tensors(style_size, need, device))
        target = prepare(target, device)
        recoloured = [prepare(s, device) for s in recoloured]
        style_losses = (masks.style_terms(config, network, recoloured, target.shape[-2:], device) if guided
                        else [style_term_for(config, network, recoloured, style.blend)])
    content_loss = masks.content_term(config, network, target) if masks is not None else None
    if content_loss is None:
        content_loss = content_term(config, network, target)
    return target, [content_loss, *style_losses, *pixel_terms(config)]


def plan_scales(config: Config, content_size: tuple[int, int], style: PreparedStyle, device: torch.device, *,
                extra_terms: bool = False, masks: SpatialControl | None = None):
    """(sizes, shapes, steps, tiling) of a run on a content of `content_size` (width, height).

    Decided, or refused with a ConfigError, before any work: `nst video` calls it for its first and
    later frames before it creates anything, so a run it would refuse at frame 2 costs nothing.
    """
    need = min_side(config)

    def shape_at(size: int) -> tuple[int, int]:
        width, height = content_size
        scale = size / max(width, height)
        return max(1, round(height * scale)), max(1, round(width * scale))

    # Coarse scales too small for the deepest layer are skipped rather than refused: start_size is
    # a starting point, and for a very wide image the first useful scale is simply a larger one.
    sizes = [size for size in scale_sizes(config) if min(shape_at(size)) >= need]
    shapes = [shape_at(size) for size in sizes]
    steps = steps_per_scale(config, sizes)
    # Which scales run in tiles, from the memory they need: decided (or refused) before any work.
    tiling = tiles.plan(config, shapes, [image.size for image in style.images()], steps, device)
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
    if output is not None:
        output = check_output_path(output, no_clobber=no_clobber)
        refuse_overwriting_inputs(output, [content, *style.paths],
                                  also=replaced_beside(output, checkpoints=bool(config.checkpoint_every)))
        if config.checkpoint_every:
            check_checkpoint_folder(output)
    # Every input is read and size-checked before the network is loaded (maybe downloaded).
    need = min_side(config)
    content_image = content if isinstance(content, Image.Image) else open_image(content)
    content_name = "the content frame" if isinstance(content, Image.Image) else content
    fit_to_size(content_name, content_image, config.size, need)
    if masks is not None:
        masks.check(config, style.paths, output, content_image.size)
    style_final = max(1, round(config.size * config.style_scale))
    for path, image in zip(style.paths, style.images()):
        fit_to_size(path, image, style_final, need, scale=config.style_scale)
    device = resolve_device(config.device)
    sizes, shapes, steps, tiling = plan_scales(config, content_image.size, style, device,
                                               extra_terms=extra_terms is not None, masks=masks)
    precision = resolve_precision(config.precision, device)
    warn_if_random(config.weights)
    network = load_network(config, device, precision=precision, callbacks=callbacks)
    torch.manual_seed(config.seed)
    run = Run(config, output, callbacks)
    for watcher in run.watchers:
        watcher.on_schedule(list(zip(steps, shapes)))
    settings = optimizer_settings(config)
    total = sum(steps)

    def work() -> torch.Tensor:
        image, state, content_tensor, first = init, None, None, 1
        for index, (size, shape, count, tile) in enumerate(zip(sizes, shapes, steps, tiling)):
            content_tensor = prepare(pil_to_tensor(resize_longest(content_image, size)), device)
            style_size = round(size * config.style_scale)
            if tile:
                target, terms = tiles.scale_terms(config, network, style, content_tensor, style_size, need, device,
                                                  tile=tile, masks=masks)
            else:
                target, terms = scale_terms(config, network, style, content_tensor, style_size, need, device, masks)
            if extra_terms is not None:
                terms += list(extra_terms(shape, device))
            if image is None:
                start = initial_image(config.init, target, lambda: style.tensors(style_size, need, device)[0],
                                      config.seed)
            else:
                start = prepare(resize_tensor(image.to(device), shape), device)
            state = resize_state(state, shape)
            run.sizes.append(shape)
            run.tiling.append(tiles.describe_tiling(shape, tile, need))
            common = {"steps": count, "callbacks": run.watchers, "first_step": first, "total_steps": total,
                      "scale": index, "state": state}
            if tile:  # the same scale, tile by tile with Adam (tiles.py)
                scale = tiles.optimize_tiled(network, start, terms, tiles.adam_settings(config), tile=tile,
                                             align=need, **common)
            else:
                scale = optimize(network, start, terms, settings, average=config.average, **common)
            image, state, first = scale.image, scale.state, first + count
        if config.preserve_color == "luminance":
            image = colour.recombine(image, content_tensor)
        return image

    save_to = output if save_on_interrupt else None
    image = run.execute(total, work, save_to=save_to, no_clobber=no_clobber)
    image = image.detach().float().cpu().contiguous()
    extras: list[Path] = []
    if output is not None:
        save_image(image, output, no_clobber=no_clobber)
        extras = save_extras(output, config, run.saver, run.log)
    return run.result(image, output, total, device, extras, precision=precision)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two images in [0, 1]."""
    mse = torch.mean((a.float().cpu() - b.float().cpu()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
