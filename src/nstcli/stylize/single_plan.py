"""A stylize run planned before any work: every input read and checked, each family's settings picked.

`plan_stylize` turns what a caller gave (paths or images, a `Config`) into a frozen `StylizePlan`:
the checked output, the content, the prepared styles and masks, device and precision, the smallest
side the layers allow, the schedule of scales (and which run in tiles), and the settings of each
family below (`NetworkSettings`, `LossSettings`, `RunSettings`). The `Config` stops here; single.py
runs the plan. Batch and video check their items' and frames' schedules with the same `plan_scales`
before their first item or frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from nstcli.config.fields import Config
from nstcli.errors import ConfigError
from nstcli.image.io import check_output_path, fit_longest, open_image, refuse_overwriting_inputs
from nstcli.network.features import VGGFeatures
from nstcli.network.load import NetworkSettings, layers_needed, load_network, min_side
from nstcli.optim.callbacks import check_checkpoint_folder, replaced_beside
from nstcli.optim.run import RunSettings
from nstcli.reports import Callback
from nstcli.runtime import resolve_device, resolve_precision
from nstcli.stylize.masks import SpatialControl
from nstcli.stylize.sizes import ScaleSettings, fit_to_size, scale_sizes, steps_per_scale
from nstcli.stylize.styles import PreparedStyle
from nstcli.terms.settings import LossSettings
from nstcli.tiling.plan import TileSettings, plan as plan_tiles

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Schedule:
    """Every scale of a run: longest side, shape (height, width), steps, tile side or None."""

    sizes: Sequence[int]
    shapes: Sequence[tuple[int, int]]
    steps: Sequence[int]
    tiling: Sequence[int | None]


@dataclass(frozen=True)
class StylizePlan:
    """One image's run, decided: what `single.run_stylize` needs besides its watchers."""

    output: Path | None  # checked; None: nothing is written
    no_clobber: bool
    content: Image.Image
    style: PreparedStyle
    masks: SpatialControl | None
    device: torch.device
    precision: str  # the network's (runtime.resolve_precision)
    need: int  # the smallest side the deepest layer sees (network/load.min_side)
    schedule: Schedule
    network: NetworkSettings
    loss: LossSettings
    run: RunSettings
    style_scale: float
    size: int  # the output's longest side, as --size says it


def network_settings(config: Config, layers: Sequence[str] | None = None) -> NetworkSettings:
    """The network `config` describes, computing `layers` (by default those its terms read)."""
    return NetworkSettings(config.weights, config.pooling, config.padding, config.input_convention, config.seed,
                           tuple(layers if layers is not None else layers_needed(config)))


def load_network_for(config: Config, device: torch.device | None = None, layers: Sequence[str] | None = None,
                     precision: str | None = None, callbacks: Sequence[Callback] = ()) -> VGGFeatures:
    """The frozen VGG19 `config` describes (or computing `layers`), loaded once per process and reused.

    `device` and `precision` default to the config's, resolved; the network's `precision` attribute
    says which it got. `callbacks` hear the weights' download, when this machine has yet to fetch them.
    """
    device = device or resolve_device(config.device)
    precision = precision or resolve_precision(config.precision, device)
    return load_network(network_settings(config, layers), device, precision, callbacks)


def plan_scales(config: Config, content_size: tuple[int, int], style: PreparedStyle, device: torch.device, *,
                extra_terms: bool = False, masks: SpatialControl | None = None) -> Schedule:
    """The schedule of a run on a content of `content_size` (width, height).

    Decided, or refused with a ConfigError, before any work: `nst video` calls it for its first and
    later frames before it creates anything, so a run it would refuse at frame 2 costs nothing.
    """
    layers = layers_needed(config)
    need = min_side(layers)

    def shape_at(size: int) -> tuple[int, int]:
        width, height = fit_longest(content_size, size)
        return height, width

    scales = config.pick(ScaleSettings)
    # Coarse scales too small for the deepest layer are skipped rather than refused: start_size is
    # a starting point, and for a very wide image the first useful scale is simply a larger one.
    sizes = [size for size in scale_sizes(scales) if min(shape_at(size)) >= need]
    shapes = [shape_at(size) for size in sizes]
    steps = steps_per_scale(scales, sizes)
    # Which scales run in tiles, from the memory they need: decided (or refused) before any work.
    tiling = plan_tiles(config.pick(TileSettings), shapes, [image.size for image in style.images()], steps, device,
                        layers=layers, align=need)
    untileable = untileable_settings(config)
    if any(tiling) and (extra_terms or untileable or (masks is not None and masks.guides_styles
                                                       and config.style_loss != "gram")):
        what = ("extra terms (video)" if extra_terms else untileable or "masks with --style-loss wasserstein")
        if config.tile:
            # The tiles were asked for: only --tile can undo them (a larger budget changes nothing).
            height, width = shapes[[bool(t) for t in tiling].index(True)]
            raise ConfigError(f"--tile {config.tile} would run the {width}x{height} px scale in tiles, which runs "
                              f"with {what} cannot use yet; drop --tile (or give --tile 0)")
        raise ConfigError(f"--size {config.size} needs tiles, which runs with {what} cannot use yet; lower "
                          "--size or raise --max-memory")
    if config.style_loss == "neighbours":
        check_neighbour_memory(config, shapes, steps, style, device)
    return Schedule(sizes, shapes, steps, tiling)


def check_neighbour_memory(config: Config, shapes, steps, style: PreparedStyle, device: torch.device) -> None:
    """The neighbour term's own memory (terms/neighbours.search_bytes) on top of the network's, checked
    against the budget before any work: the term runs whole scales only, so a run it would not fit is
    refused (ConfigError) rather than started."""
    from nstcli.network import memory
    from nstcli.terms.neighbours import search_bytes
    from nstcli.tiling.plan import style_shape

    budget = config.max_memory if config.max_memory is not None else memory.available_bytes(device)
    if budget is None:
        return
    width = sum(memory.channels(layer) for layer in config.style_layers)
    turns = len(config.style_rotations)
    for shape, count in zip(shapes, steps):
        styles = [style_shape([size], max(shape), config.style_scale) for size in [i.size for i in style.images()]]
        need = memory.untiled_need(shape, max(styles, key=lambda s: s[0] * s[1]), layers_needed(config),
                                   config.content_layers, config.optimizer, count, device.type).total
        need += search_bytes(shape, styles * turns, width)
        if need > budget:
            height, width_px = shape
            allowed = (f"the {memory.describe(budget)} --max-memory allows" if config.max_memory is not None
                       else f"the {memory.describe(budget)} free on the {device.type} (--max-memory)")
            raise ConfigError(f"--size {config.size} with --style-loss neighbours needs about {memory.describe(need)} "
                              f"at its {width_px}x{height} px scale, more than {allowed}, and the neighbour search "
                              "cannot run in tiles; lower --size or raise --max-memory")


def untileable_settings(config: Config) -> str | None:
    """What in `config` a scale run in tiles cannot do, said as a flag, or None.

    The neighbour search and the self-similarity matrix compare every position of the image with
    every other (or with the whole style): a tile sees only its own; the pyramid spans the whole image.
    """
    if config.style_loss == "neighbours":
        return "--style-loss neighbours"
    if config.content_loss == "self-similarity":
        return "--content-loss self-similarity"
    if config.pyramid_levels:
        return "--pyramid-levels"
    return None


def check_combinations(config: Config, masks: SpatialControl | None) -> None:
    """Settings that do not make sense with the masks given (ConfigError, exit 2)."""
    if masks is None:
        return
    if masks.guides_styles and config.style_loss == "neighbours":
        # A masked neighbour search would need each region's own style columns; it is not written yet.
        raise ConfigError("style masks work with --style-loss gram or wasserstein only, not neighbours; drop the "
                          "masks or use --style-loss gram")
    if masks.guides_styles and len(config.style_rotations) > 1:
        raise ConfigError("--style-rotations reads each style turned, which style masks cannot follow (a mask "
                          "is drawn for the style as it is); drop the masks or give --style-rotations 0")
    if masks.content_mask_path is not None and config.content_loss != "features":
        raise ConfigError(f"--content-mask weighs the content's feature maps; --content-loss {config.content_loss} "
                          "has no masked form: drop --content-mask or use --content-loss features")


def _check_output(output: PathLike | None, inputs: Sequence, config: Config, no_clobber: bool) -> Path | None:
    """The output path checked before any work: not an input, nor what a checkpoint would replace."""
    if output is None:
        return None
    output = check_output_path(output, no_clobber=no_clobber)
    refuse_overwriting_inputs(output, inputs, also=replaced_beside(output, checkpoints=bool(config.checkpoint_every)))
    if config.checkpoint_every:
        check_checkpoint_folder(output)
    return output


def plan_stylize(content: PathLike | Image.Image, styles: PathLike | Sequence[PathLike] | PreparedStyle,
                 output: PathLike | None = None, config: Config = Config(), *, no_clobber: bool = False,
                 extra_terms: bool = False, masks: SpatialControl | None = None) -> StylizePlan:
    """Every input read and size-checked before the network is loaded (maybe downloaded), the output
    path checked, the scales planned: a run refused here costs nothing."""
    style = styles if isinstance(styles, PreparedStyle) else PreparedStyle(styles, config.style_blend)
    output = _check_output(output, [content, *style.paths], config, no_clobber)
    network = network_settings(config)
    need = min_side(network.layers)
    content_image = content if isinstance(content, Image.Image) else open_image(content)
    content_name = "the content frame" if isinstance(content, Image.Image) else content
    fit_to_size(content_name, content_image, config.size, need)
    check_combinations(config, masks)
    if masks is not None:
        masks.check(style.paths, output, content_image.size, style_blend=config.style_blend)
    style_final = max(1, round(config.size * config.style_scale))
    for path, image in zip(style.paths, style.images()):
        fit_to_size(path, image, style_final, need, scale=config.style_scale)
    device = resolve_device(config.device)
    schedule = plan_scales(config, content_image.size, style, device, extra_terms=extra_terms, masks=masks)
    precision = resolve_precision(config.precision, device)
    return StylizePlan(output, no_clobber, content_image, style, masks, device, precision, need, schedule, network,
                       config.pick(LossSettings), config.pick(RunSettings), config.style_scale, config.size)
