"""How much memory a scale needs, before any of it is allocated; how much the device has; sizes in text.

Importable without torch, so a run over the budget is refused before the network loads.

A step at H x W keeps, per pixel, the activations of every VGG19 layer up to the deepest one used
(a layer at pooling depth p has C / 4^p values per input pixel), what autograd saves of them for
the backward and the gradients flowing back: ACTIVATION_FACTOR times the activations, measured
(benchmarks/tiling/tiles.py prints the calibration). On top come the optimiser's state (Adam: two copies
of the image; L-BFGS: two per correction pair kept), the content targets, the image copies the
engine and the run hold, and the one-off forward passes that compute the targets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from nstcli.config.layers import BLOCKS, LAYER_INDEX, LAYER_NAMES

FLOAT = 4  # bytes of a float32
IMAGE = 3 * FLOAT  # bytes per pixel of one RGB float image
# Measured on the CPU: peak bytes of a forward+backward over the activations it computes (see above).
ACTIVATION_FACTOR = 1.7
# Image-sized copies besides the optimiser's: the optimised pixels, their gradient, the best and the
# evaluated image, the last reported one (engine.py), the start image and the content image (api.py).
ENGINE_COPIES = 7
# What the process holds before a run: torch, its libraries and VGG19's weights (measured on the CPU,
# where they count against the same memory; on a GPU the budget is the device's own).
RUNTIME_CPU = 800 * 2**20
LBFGS_HISTORY_BYTES = 1 << 30  # as optimizers.lbfgs_history caps it
# Tiles are sized to this share of the budget: the estimates come within a few percent of what is
# measured (benchmarks/README.md), and a tile a little smaller costs little.
TILE_HEADROOM = 0.9

def describe(size: float) -> str:
    """Bytes as people read them: '7.6 GB', '850 MB', '1 kB' (a --max-memory of 1KB is not "1 MB")."""
    if size >= 10**9:
        return f"{size / 10**9:.1f} GB"
    if size < 10**6 - 500:
        return f"{max(1, round(size / 10**3))} kB"
    return f"{round(size / 10**6)} MB"


def pooling_depth(layer: str) -> int:
    """How many poolings come before `layer`: its maps have 1/4^depth of the input's positions."""
    return sum(1 for name in LAYER_NAMES[: LAYER_INDEX[layer]] if name.startswith("pool"))


def channels(layer: str) -> int:
    return BLOCKS[int(layer[4]) - 1][0]  # conv3_2, relu3_2 and pool3 are all block 3


def activations_per_pixel(layers: Sequence[str]) -> float:
    """Values per input pixel of every layer the network computes, up to the deepest of `layers`."""
    deepest = max(LAYER_INDEX[name] for name in layers)
    total = 0.0
    for index, name in enumerate(LAYER_NAMES[: deepest + 1]):
        if name.startswith("relu") and LAYER_NAMES[index - 1] not in layers:
            continue  # in place: shares its convolution's memory
        depth = pooling_depth(name) + (1 if name.startswith("pool") else 0)
        total += channels(name) / 4**depth
    return total


def features_per_pixel(layers: Sequence[str]) -> float:
    """Values per input pixel of the feature maps of `layers` themselves (e.g. content targets)."""
    return sum(channels(name) / 4 ** pooling_depth(name) for name in layers)


def forward_peak_per_pixel(layers: Sequence[str]) -> float:
    """Values per pixel a forward without gradients holds at once: two neighbouring maps and the outputs."""
    widest = max(channels(name) / 4 ** pooling_depth(name) for name in LAYER_NAMES[: max(
        LAYER_INDEX[name] for name in layers) + 1])
    return 2 * widest + features_per_pixel(layers)


@dataclass(frozen=True)
class Need:
    """What a scale is estimated to need, in bytes."""

    total: int
    shape: tuple[int, int]
    tile: int | None = None  # the tile side, for a tiled scale


def optimiser_bytes(pixels: int, optimizer: str, steps: int) -> int:
    if optimizer == "adam":
        return 2 * IMAGE * pixels
    pairs = max(5, min(100, LBFGS_HISTORY_BYTES // (2 * IMAGE * pixels)))
    return 2 * min(max(steps, 1), pairs) * IMAGE * pixels + 2 * IMAGE * pixels  # pairs, direction, old grad


def step_bytes(height: int, width: int, layers: Sequence[str], content_layers: Sequence[str],
               optimizer: str, steps: int) -> int:
    """One scale run on the whole image: activations, optimiser state, targets, image copies."""
    pixels = height * width
    work = ACTIVATION_FACTOR * FLOAT * activations_per_pixel(layers) * pixels
    targets = FLOAT * features_per_pixel(content_layers) * pixels
    return int(work + targets + ENGINE_COPIES * IMAGE * pixels + optimiser_bytes(pixels, optimizer, steps))


def forward_bytes(height: int, width: int, layers: Sequence[str]) -> int:
    """A forward without gradients (targets): freed before the steps begin."""
    return int(FLOAT * forward_peak_per_pixel(layers) * height * width)


def runtime_bytes(device: str) -> int:
    return RUNTIME_CPU if device == "cpu" else 0


def untiled_need(shape: tuple[int, int], style_shape: tuple[int, int], layers: Sequence[str],
                 content_layers: Sequence[str], optimizer: str, steps: int, device: str = "cpu") -> Need:
    height, width = shape
    run = step_bytes(height, width, layers, content_layers, optimizer, steps)
    targets = max(forward_bytes(height, width, layers), forward_bytes(*style_shape, layers))
    return Need(runtime_bytes(device) + max(run, targets), tuple(shape))


def tiled_need(shape: tuple[int, int], tile: int, layers: Sequence[str], content_layers: Sequence[str],
               align: int, device: str = "cpu") -> Need:
    """A scale run tile by tile with Adam: the whole image, Adam's moments of it and its content
    targets stay in memory; the network only ever sees one tile (plus its alignment)."""
    height, width = shape
    pixels = height * width
    side = tile + align
    # The content image, the optimised image, Adam's two moments, the content features, and the
    # previous scale's image and moments (a quarter of the size each), all at once.
    whole = (4.75 * IMAGE + FLOAT * features_per_pixel(content_layers)) * pixels
    per_tile = step_bytes(side, side, layers, content_layers, "adam", 1)
    # A tile's interior is a strided view of each feature map, which the style term cannot flatten
    # in place: it copies them (measured at 2048 px: the untiled estimate of the tile alone fell
    # short by about these copies of every layer read).
    per_tile += FLOAT * features_per_pixel(layers) * side * side
    return Need(runtime_bytes(device) + int(whole + per_tile), tuple(shape), tile)


def largest_tile(shape: tuple[int, int], budget: int, layers: Sequence[str], content_layers: Sequence[str],
                 align: int, smallest: int, device: str = "cpu") -> int | None:
    """The largest tile side (a multiple of `align`) whose tiled run fits `budget`; None if none does."""
    def fits(tile: int) -> bool:
        return tiled_need(shape, tile, layers, content_layers, align, device).total <= TILE_HEADROOM * budget

    low, high = -(-smallest // align), max(shape) // align  # in units of align; the need grows with the tile
    if high < low or not fits(low * align):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle * align) else (low, middle - 1)
    return low * align


def available_bytes(device) -> int | None:
    """Free memory on `device` (a torch device), with headroom left for everything else; None if unknown."""
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(0.9 * free)
    if kind != "cpu":
        return None  # MPS shares memory with the system and reports no free figure
    free = None
    try:
        import psutil

        free = psutil.virtual_memory().available
    except ImportError:
        try:
            with open("/proc/meminfo") as handle:
                for line in handle:
                    if line.startswith("MemAvailable:"):
                        free = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    if free is None and hasattr(os, "sysconf"):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            free = None
    # The process already holds the runtime, which the estimates count: give it back, keep 20% spare.
    return None if free is None else int(0.8 * free) + RUNTIME_CPU
