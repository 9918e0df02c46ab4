"""Running one scale tile by tile, so any output size fits in the memory of one tile.

At a scale too large for the memory budget the image is cut into overlapping square tiles, and a
step is one pass over all of them: each tile takes one Adam step through `engine.optimize` with the
terms built for it, and its result is blended into the whole image under feathered weights (linear
ramps across each overlap; the ramps of neighbouring tiles add up to 1). The grid moves at every
step (offsets from a van der Corput sequence, base 2 down and base 3 across), so no seam stays in
one place. Every pixel is updated once per step, as without tiles, so steps, checkpoints and
progress mean the same either way.

What makes a tile's loss the whole image's loss at that place:
- The network sees the tile with a margin of context around it, and the terms read only the
  features of the tile's interior (`Interior`): its border is no border for the network. Crops
  start on the deepest layer's pooling grid, so a tile's features are the whole image's there.
- The content targets are the whole content image's features, computed once per scale tile by tile
  the same way (`TiledContent`), and cut per tile.
- Style statistics do not depend on where a tile is: the scale's style term is used as it is
  (built tile by tile too, when even one forward pass over the style image would not fit).
- Adam, not L-BFGS: L-BFGS's curvature pairs describe the whole vector of pixels and mean nothing
  after a move to another tile. Adam's moments are kept for the whole image and cut per tile, so
  a tile continues exactly where the last step over it left off, and they carry across scales as
  they do without tiles. (Restarting them at each visit would make every visit's step a first
  step, as large as the learning rate everywhere.) Iterate averaging is not applied at tiled scales.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from nstcli.image import colour
from nstcli.network import memory
from nstcli.config.fields import Config
from nstcli.optim.engine import Callback, ScaleResult, StepReport, StopRun, optimize
from nstcli.errors import ConfigError
from nstcli.network.features import VGGFeatures
from nstcli.image.io import prepare, style_side
from nstcli.terms.objective import (
    content_layer_weights,
    features_of,
    gram_layer_weights,
    pixel_terms,
    style_term_for,
)
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.terms.base import Features, Term
from nstcli.terms.content import Content
from nstcli.terms.gram import GramStyle

SMALLEST_TILE = 32
ADAM_LR = 0.02  # Adam's default learning rate (config.learning_rate) when the run's optimiser is L-BFGS


# --- geometry ------------------------------------------------------------------------------------

def margin_and_overlap(tile: int, align: int = 1) -> tuple[int, int]:
    """Context margin on each side and overlap between neighbours, for a tile side: 1/32 of the
    tile, at most 16 px.

    Small, because every pixel of margin or overlap is paid for at every step, and not growing with
    the tile: how far a border disturbs the network's features is a fixed number of pixels, and the
    moving grid hides what a small overlap cannot. The margin is at least half a cell of the deepest
    layer (`align` pixels), so the crop holds every feature cell of its tile. The overlap is even,
    so each ramp is centred on a pixel boundary.
    """
    share = min(tile // 32, 16)
    return max(1, share, align // 2), max(2, share // 2 * 2)


def van_der_corput(index: int, base: int) -> float:
    """The index-th point of the van der Corput sequence in [0, 1): 0, 1/2, 1/4, 3/4, ... (base 2)."""
    value, denominator = 0.0, 1
    while index:
        index, digit = divmod(index, base)
        denominator *= base
        value += digit / denominator
    return value


def cuts(length: int, span: int, overlap: int, phase: float) -> list[int]:
    """Where consecutive tiles meet along one axis (the centre of each overlap), for interiors of at
    most `span` pixels, the grid shifted by `phase` (in [0, 1)) of its spacing.

    The cuts are evenly spaced, at most span - overlap apart; shifted, the first and last pieces are
    partial, and one shorter than a quarter of the spacing is widened to that (taking from its
    neighbour), so no step pays for a row of sliver tiles and neighbouring ramps never meet.
    """
    stride = span - overlap
    if length <= span:
        return []
    spacing = length / math.ceil(length / stride)
    least = max(overlap, spacing / 4)
    points, k = [], 0 if phase > 0 else 1
    while (point := (k + phase) * spacing) < length - 0.5:
        points.append(int(min(max(point, least), length - least) + 0.5))
        k += 1
    return sorted(set(points))


def spans(length: int, span: int, overlap: int, phase: float) -> list[tuple[int, int, int, int]]:
    """(start, end, own_start, own_end) of every tile along an axis: [start, end) is its interior,
    overlapping its neighbours by `overlap` around each cut; [own_start, own_end) is the part only it
    owns up to the cut (the own parts partition the axis)."""
    bounds = [0, *cuts(length, span, overlap, phase), length]
    half = overlap // 2
    out = []
    for k in range(len(bounds) - 1):
        start = bounds[k] - half if k > 0 else 0
        end = bounds[k + 1] + half if k + 2 < len(bounds) else length
        out.append((start, end, bounds[k], bounds[k + 1]))
    return out


def ramp(start: int, end: int, length: int, overlap: int) -> torch.Tensor:
    """Blend weights along one axis of an interior: 1 inside, rising linearly across an overlap with a
    neighbour (0 towards it); at an image edge there is no neighbour and no ramp."""
    position = torch.arange(start, end, dtype=torch.float32) + 0.5
    weight = torch.ones(end - start)
    if start > 0:
        weight = torch.minimum(weight, ((position - start) / overlap).clamp(0, 1))
    if end < length:
        weight = torch.minimum(weight, ((end - position) / overlap).clamp(0, 1))
    return weight


@dataclass(frozen=True)
class Tile:
    """One tile at one step: its interior, the part only it owns, and the crop the network sees."""

    interior: tuple[int, int, int, int]  # y0, y1, x0, x1 in the image
    own: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]

    def weight(self, height: int, width: int, overlap: int) -> torch.Tensor:
        """(1, h, w, 1) blend weights of the interior (NHWC, like the optimised pixels)."""
        y0, y1, x0, x1 = self.interior
        return (ramp(y0, y1, height, overlap)[:, None] * ramp(x0, x1, width, overlap)[None, :])[None, :, :, None]

    def boxes(self, layers: Sequence[str], own: bool = False) -> dict[str, tuple[int, int, int, int]]:
        """The interior (or own part) in each layer's feature map of the crop, rows and columns."""
        y0, y1, x0, x1 = self.own if own else self.interior
        cy0, cy1, cx0, cx1 = self.crop
        out = {}
        for name in layers:
            factor = 2 ** memory.pooling_depth(name)
            rows, cols = (cy1 - cy0) // factor, (cx1 - cx0) // factor
            out[name] = (*_cells(y0 - cy0, y1 - cy0, factor, rows), *_cells(x0 - cx0, x1 - cx0, factor, cols))
        return out

    def cells(self, layer: str, own: bool = False) -> tuple[int, int, int, int]:
        """The same box in the whole image's feature map of `layer` (crops start on its grid)."""
        r0, r1, c0, c1 = self.boxes([layer], own)[layer]
        factor = 2 ** memory.pooling_depth(layer)
        return r0 + self.crop[0] // factor, r1 + self.crop[0] // factor, c0 + self.crop[2] // factor, \
            c1 + self.crop[2] // factor


def _cells(start: int, end: int, factor: int, size: int) -> tuple[int, int]:
    # Halves round up, always (not to even, as round() does): crops start on the grid, so a cut then
    # falls on the same cell seen from either of its tiles.
    first = min((2 * start + factor) // (2 * factor), size - 1)
    return first, max(first + 1, min((2 * end + factor) // (2 * factor), size))


def _crop_axis(start: int, end: int, length: int, margin: int, align: int, least: int) -> tuple[int, int]:
    low = max(0, start - margin) // align * align
    high = min(length, end + margin)
    if high - low < least:  # too small for the deepest layer: more context
        high = min(length, low + least)
        low = max(0, high - least) // align * align
    return low, high


def layout(shape: tuple[int, int], tile: int, align: int, step: int = 0) -> list[Tile]:
    """The tiles covering an image of `shape` at step `step` (the grid moves from step to step)."""
    height, width = shape
    margin, overlap = margin_and_overlap(tile, align)
    span = tile - 2 * margin
    # An axis no longer than a tile is one tile, which needs no margin: it has no neighbours.
    down = spans(height, span if height > tile else height, overlap, van_der_corput(step, 2))
    across = spans(width, span if width > tile else width, overlap, van_der_corput(step, 3))
    tiles = []
    for y0, y1, oy0, oy1 in down:
        for x0, x1, ox0, ox1 in across:
            crop = (*_crop_axis(y0, y1, height, margin, align, align),
                    *_crop_axis(x0, x1, width, margin, align, align))
            tiles.append(Tile((y0, y1, x0, x1), (oy0, oy1, ox0, ox1), crop))
    return tiles


def grid_shape(shape: tuple[int, int], tile: int, align: int) -> tuple[int, int]:
    tiles = layout(shape, tile, align)
    return len({t.interior[:2] for t in tiles}), len({t.interior[2:] for t in tiles})


def crop(tensor: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    y0, y1, x0, x1 = box
    return tensor[..., y0:y1, x0:x1]


# --- terms per tile ------------------------------------------------------------------------------

class Interior(Term):
    """A term evaluated on a tile's interior only: its features in each layer and its pixels."""

    def __init__(self, term: Term, tile: Tile, origin: tuple[int, int]):
        self.term = term
        self.name = term.name
        self.layers = term.layers
        self.boxes = tile.boxes(term.layers)
        y0, y1, x0, x1 = tile.interior
        self.pixels = (y0 - origin[0], y1 - origin[0], x0 - origin[1], x1 - origin[1])

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        inner = {name: crop(features[name], self.boxes[name]) for name in self.layers}
        return self.term(inner, crop(image, self.pixels))


class TiledContent(Term):
    """The content term of a whole scale, kept as the content image's features; `at(tile)` gives the
    tile's own content term, its targets cut from them."""

    name = "content"

    def __init__(self, features: Features, weight: float, layer_weights: dict[str, float] | None = None):
        self.features = dict(features)
        self.layers = tuple(self.features)
        self.weight = weight
        # From the whole image's targets: every tile weighs its layers alike (terms/normalise.py).
        self.layer_weights = layer_weights

    def at(self, tile: Tile) -> Content:
        return Content({name: crop(value, tile.cells(name)) for name, value in self.features.items()},
                       self.weight, self.layer_weights)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        return Content(self.features, self.weight, self.layer_weights)(features, image)


@torch.no_grad()
def tiled_features(network: VGGFeatures, image: torch.Tensor, layers: Sequence[str], tile: int,
                   align: int, visit: Callable | None = None) -> Features:
    """The whole image's feature maps at `layers`, one tile (with context) at a time; `visit(tile,
    features)` instead receives every tile's own part (for statistics summed over positions)."""
    height, width = image.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    for piece in layout((height, width), tile, align):
        features = features_of(network, crop(image, piece.crop))
        if visit is not None:
            visit({name: crop(features[name], box) for name, box in piece.boxes(layers, own=True).items()})
            continue
        for name in layers:
            if name not in out:
                factor = 2 ** memory.pooling_depth(name)
                channels = features[name].shape[1]
                # NaN until written: a cell no tile wrote would show, not pass for a target.
                # Made channels_last, not converted: a conversion would hold two copies at once.
                out[name] = torch.empty((1, channels, height // factor, width // factor), dtype=features[name].dtype,
                                        device=features[name].device,
                                        memory_format=torch.channels_last).fill_(math.nan)
            crop(out[name], piece.cells(name, own=True)).copy_(crop(features[name], piece.boxes([name], True)[name]))
    # A sum, not isnan(): no mask as large as the maps (a quarter of their memory) at these sizes.
    assert not any(value.sum().isnan() for value in out.values()), "tiles left feature cells unwritten"
    return out


@torch.no_grad()
def tiled_grams(network: VGGFeatures, styles: Sequence[torch.Tensor], blend: Sequence[float],
                layers: Sequence[str], tile: int, align: int) -> dict[str, torch.Tensor]:
    """The blended Gram matrices of `styles` (as terms/gram.blended_grams), summed tile by tile."""
    total = sum(blend)
    grams: dict[str, torch.Tensor] = {}
    for style, share in zip(styles, blend):
        if share == 0:
            continue
        sums: dict[str, torch.Tensor] = {}

        def visit(features, sums=sums):
            for name, value in features.items():
                flat = value.reshape(value.shape[0], value.shape[1], -1)
                product = torch.bmm(flat, flat.transpose(1, 2))
                sums[name] = product if name not in sums else sums[name] + product

        tiled_features(network, style, layers, tile, align, visit)
        height, width = style.shape[-2:]
        for name in layers:
            factor = 2 ** memory.pooling_depth(name)
            gram = sums[name] / ((height // factor) * (width // factor)) * (share / total)
            grams[name] = gram if name not in grams else grams[name] + gram
    return grams


def scale_terms(config: Config, network: VGGFeatures, style, content: torch.Tensor, style_size: int,
                need: int, device: torch.device, tile: int, masks=None) -> tuple[torch.Tensor, list[Term]]:
    """stylize.single.scale_terms for a tiled scale: the same terms, with no forward pass over a whole image.

    With `masks` (masks.SpatialControl, checked) the style terms are guided and the content term
    weighted, as without tiles; each is cut to a tile by its `at(tile)` in the runner.
    """
    if config.preserve_color == "none":
        target, styles = content, None
    else:
        target, styles = colour.colour_targets(config.preserve_color, content, style.tensors(style_size, need, device))
        target, styles = prepare(target, device), [prepare(s, device) for s in styles]
    features = tiled_features(network, target, config.content_layers, tile, need)
    content_mask = masks.content_mask_at(target.shape[-2:], device) if masks is not None else None
    if content_mask is not None:
        from nstcli.terms.masked_content import MaskedContent

        content_term: Term = MaskedContent(features, content_mask, config.content_weight,
                                           layer_weights=content_layer_weights(config, features))
    else:
        content_term = TiledContent(features, config.content_weight, content_layer_weights(config, features))
    terms: list[Term] = [content_term]
    if masks is not None and masks.guides_styles:
        # Guided terms keep the style's statistics (one forward per style image, as a tile's) and the
        # whole image's masks per layer, cut to each tile in the runner.
        styles = styles if styles is not None else style.tensors(style_size, need, device)
        guided = masks.style_terms(config, network, styles, target.shape[-2:], device)
        return target, terms + guided + pixel_terms(config)
    # A style image no larger than a tile takes one forward pass like a tile's: the scale's own term.
    small = max(max(_shape(image.size, style_side(image.size, style_size))) for image in style.images()) <= tile
    if styles is None and small:
        terms.append(style.term(config, network, style_size, need, device))  # cached, as without tiles
    elif small or config.style_loss != "gram":
        styles = styles if styles is not None else style.tensors(style_size, need, device)
        terms.append(style_term_for(config, network, styles, style.blend))
    else:
        styles = styles if styles is not None else style.tensors(style_size, need, device)
        grams = tiled_grams(network, styles, style.blend, config.style_layers, tile, need)
        terms.append(GramStyle(grams, gram_layer_weights(config, grams), config.style_weight))
    return target, terms + pixel_terms(config)


def adam_settings(config: Config) -> OptimizerSettings:
    lr = config.learning_rate if config.optimizer == "adam" else ADAM_LR
    return OptimizerSettings("adam", lr, tuple(config.adam_betas))


# --- the runner ----------------------------------------------------------------------------------

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
    return ScaleResult(image.permute(0, 3, 1, 2), carried, last)


# --- the plan --------------------------------------------------------------------------------

def _shape(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(height, width) of an image of PIL `size` resized to `longest` (as images.resize_longest)."""
    width, height = size
    scale = longest / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def plan(config: Config, shapes: Sequence[tuple[int, int]], style_sizes: Sequence[tuple[int, int]],
         steps: Sequence[int], device: torch.device) -> list[int | None]:
    """The tile side of every scale (None: whole), decided before any work; ConfigError if a scale
    cannot fit the memory budget (tiling turned off, or not even the smallest tile fits)."""
    from nstcli.network.load import layers_needed, min_side

    if config.tile is not None and 0 < config.tile < SMALLEST_TILE:
        raise ConfigError(f"--tile must be 0 (no tiles) or at least {SMALLEST_TILE} px, got {config.tile}")
    layers, align = layers_needed(config), min_side(config)
    budget = config.max_memory if config.max_memory is not None else memory.available_bytes(device)
    allowed = (f"the {memory.describe(budget)} --max-memory allows" if config.max_memory is not None
               else f"the {memory.describe(budget or 0)} free on the {device.type} (--max-memory)")
    kind = getattr(device, "type", "cpu")
    out: list[int | None] = []
    over = None
    for (height, width), count in zip(shapes, steps):
        longest = max(height, width)
        style_shape = max((_shape(size, style_side(size, round(longest * config.style_scale))) for size in style_sizes),
                          key=lambda s: s[0] * s[1])
        whole = memory.untiled_need((height, width), style_shape, layers, config.content_layers,
                                    config.optimizer, count, kind)
        if config.tile == 0 or (config.tile is None and (budget is None or whole.total <= budget)):
            if config.tile == 0 and budget is not None and whole.total > budget:
                over = whole  # the largest scale over the budget is the one to name
            out.append(None)
            continue
        if config.tile is not None:
            if longest <= config.tile:
                # A tile as large as the scale is the whole scale: it runs untiled, and needs what an
                # untiled run needs; the budget holds for it as for any other.
                if budget is not None and whole.total > budget:
                    fits = memory.largest_tile((height, width), budget, layers, config.content_layers, align,
                                               max(SMALLEST_TILE, 2 * align), kind)
                    hint = (f"give --tile {fits} or less, or leave it out" if fits is not None
                            else "not even the smallest tiles fit: raise --max-memory or lower --size")
                    raise ConfigError(
                        f"--tile {config.tile} is at least the {width}x{height} px scale, which then runs whole "
                        f"and needs about {memory.describe(whole.total)}, more than {allowed}; {hint}")
                out.append(None)
                continue
            tiled = memory.tiled_need((height, width), config.tile, layers, config.content_layers, align, kind)
            if budget is not None and tiled.total > budget:
                raise ConfigError(
                    f"--tile {config.tile} needs about {memory.describe(tiled.total)} at the {width}x{height} px "
                    f"scale, more than {allowed}; choose a smaller --tile or leave it out")
            out.append(config.tile)
            continue
        tile = memory.largest_tile((height, width), budget, layers, config.content_layers, align,
                                   max(SMALLEST_TILE, 2 * align), kind)
        if tile is None:
            smallest = memory.tiled_need((height, width), max(SMALLEST_TILE, 2 * align), layers,
                                         config.content_layers, align, kind)
            raise ConfigError(
                f"--size {config.size} does not fit {allowed} even in tiles: its {width}x{height} px scale needs "
                f"about {memory.describe(smallest.total)} with the smallest; raise --max-memory or lower --size")
        out.append(tile)
    if over is not None:
        height, width = over.shape
        raise ConfigError(
            f"--size {config.size} needs about {memory.describe(over.total)} at its {width}x{height} px scale, "
            f"more than {allowed}; drop --tile 0 to run that scale in tiles, raise --max-memory, or lower --size")
    return out


def describe_tiling(shape: tuple[int, int], tile: int | None, align: int) -> dict | None:
    """What --json says about a scale's tiles."""
    if tile is None:
        return None
    rows, cols = grid_shape(shape, tile, align)
    return {"tile": tile, "grid": [rows, cols], "optimizer": "adam"}

