"""Which scales run in tiles, and how large the tiles are: decided from network/memory.py's estimates
before any work, or refused with a ConfigError that says what to change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nstcli.errors import ConfigError
from nstcli.image.io import fit_longest, style_side
from nstcli.network import memory
from nstcli.tiling.grid import grid_shape

SMALLEST_TILE = 32


@dataclass(frozen=True)
class TileSettings:
    """The keys the tile plan reads (named as in the config)."""

    tile: int | None  # None: tiles where the budget needs them; 0: never
    max_memory: int | None  # bytes; None: what the device has free
    size: int  # the output's longest side, for messages
    style_scale: float
    optimizer: str
    content_layers: tuple[str, ...]


def style_shape(style_sizes: Sequence[tuple[int, int]], longest: int, style_scale: float) -> tuple[int, int]:
    """(height, width) of the largest style image at a scale of longest side `longest`."""
    shapes = [fit_longest(size, style_side(size, round(longest * style_scale)))[::-1] for size in style_sizes]
    return max(shapes, key=lambda s: s[0] * s[1])


def plan(settings: TileSettings, shapes: Sequence[tuple[int, int]], style_sizes: Sequence[tuple[int, int]],
         steps: Sequence[int], device: torch.device, *, layers: Sequence[str], align: int) -> list[int | None]:
    """The tile side of every scale (None: whole), decided before any work; ConfigError if a scale
    cannot fit the memory budget (tiling turned off, or not even the smallest tile fits). `layers` are
    the network's, `align` its deepest layer's cell (network/load.min_side)."""
    if settings.tile is not None and 0 < settings.tile < SMALLEST_TILE:
        raise ConfigError(f"--tile must be 0 (no tiles) or at least {SMALLEST_TILE} px, got {settings.tile}")
    budget = settings.max_memory if settings.max_memory is not None else memory.available_bytes(device)
    allowed = (f"the {memory.describe(budget)} --max-memory allows" if settings.max_memory is not None
               else f"the {memory.describe(budget or 0)} free on the {device.type} (--max-memory)")
    kind = getattr(device, "type", "cpu")
    out: list[int | None] = []
    over = None
    for (height, width), count in zip(shapes, steps):
        longest = max(height, width)
        whole = memory.untiled_need((height, width), style_shape(style_sizes, longest, settings.style_scale), layers,
                                    settings.content_layers, settings.optimizer, count, kind)
        if settings.tile == 0 or (settings.tile is None and (budget is None or whole.total <= budget)):
            if settings.tile == 0 and budget is not None and whole.total > budget:
                over = whole  # the largest scale over the budget is the one to name
            out.append(None)
            continue
        if settings.tile is not None:
            if longest <= settings.tile:
                # A tile as large as the scale is the whole scale: it runs untiled, and needs what an
                # untiled run needs; the budget holds for it as for any other.
                if budget is not None and whole.total > budget:
                    fits = memory.largest_tile((height, width), budget, layers, settings.content_layers, align,
                                               max(SMALLEST_TILE, 2 * align), kind)
                    hint = (f"give --tile {fits} or less, or leave it out" if fits is not None
                            else "not even the smallest tiles fit: raise --max-memory or lower --size")
                    raise ConfigError(
                        f"--tile {settings.tile} is at least the {width}x{height} px scale, which then runs whole "
                        f"and needs about {memory.describe(whole.total)}, more than {allowed}; {hint}")
                out.append(None)
                continue
            tiled = memory.tiled_need((height, width), settings.tile, layers, settings.content_layers, align, kind)
            if budget is not None and tiled.total > budget:
                raise ConfigError(
                    f"--tile {settings.tile} needs about {memory.describe(tiled.total)} at the {width}x{height} px "
                    f"scale, more than {allowed}; choose a smaller --tile or leave it out")
            out.append(settings.tile)
            continue
        tile = memory.largest_tile((height, width), budget, layers, settings.content_layers, align,
                                   max(SMALLEST_TILE, 2 * align), kind)
        if tile is None:
            smallest = memory.tiled_need((height, width), max(SMALLEST_TILE, 2 * align), layers,
                                         settings.content_layers, align, kind)
            raise ConfigError(
                f"--size {settings.size} does not fit {allowed} even in tiles: its {width}x{height} px scale needs "
                f"about {memory.describe(smallest.total)} with the smallest; raise --max-memory or lower --size")
        out.append(tile)
    if over is not None:
        height, width = over.shape
        raise ConfigError(
            f"--size {settings.size} needs about {memory.describe(over.total)} at its {width}x{height} px scale, "
            f"more than {allowed}; drop --tile 0 to run that scale in tiles, raise --max-memory, or lower --size")
    return out


def describe_tiling(shape: tuple[int, int], tile: int | None, align: int) -> dict | None:
    """What --json says about a scale's tiles."""
    if tile is None:
        return None
    rows, cols = grid_shape(shape, tile, align)
    return {"tile": tile, "grid": [rows, cols], "optimizer": "adam"}
