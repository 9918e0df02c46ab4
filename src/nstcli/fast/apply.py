"""Applying a trained network: one image, or files and folders as `nst batch` takes them.

- Any size: the network is convolutional. Past what memory allows (or `tile` px), the image runs in
  overlapping tiles blended with linear ramps. Instance normalisation would normalise each tile by
  its own statistics and show seams, so the statistics of every norm layer are first taken from one
  pass over the whole image shrunk to the tile size, and every tile is normalised by those.
- `strength` blends the result with the photo (1: the network's output, 0: the photo); `preserve_color`
  keeps the photo's colours and takes only the result's luminance (colour.recombine).
- Many inputs: outputs OUT/[subfolder/]<stem>.<format>; an output that exists is skipped (so a re-run
  resumes) unless `overwrite`; `shard` (K, N) runs only the items jobs.shards.shard_of puts in shard K.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
import torch.nn.functional as F

from nstcli import paths
from nstcli.network import memory
from nstcli.jobs.inputs import IMAGE_EXTENSIONS, find_contents
from nstcli.jobs.items import ItemResult
from nstcli.jobs.shards import shard_of
from nstcli.errors import ConfigError, ImageError, Interrupted, WriteError
from nstcli.fast import builtin, modelfile
from nstcli.fast.network import MULTIPLE, TransformNet
from nstcli.fast.precision import autocast
from nstcli.config.commands import ApplySettings, checked
from nstcli.config.specs import FAST_PRECISIONS
from nstcli.outputs import prepare_folder
from nstcli.runtime import resolve_precision
from nstcli.reports import Callback, notify
from nstcli.image.io import (OUTPUT_FORMATS, check_output_name, check_output_path, load_image, prepare,
                           refuse_overwriting_inputs, save_image)

SMALLEST_TILE = 64
# Bytes per pixel of a forward pass without gradients: the widest maps (w channels at full
# resolution, held twice around each convolution and once more by the upsampling), fp32.
BYTES_PER_PIXEL_PER_WIDTH = 4 * 4


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: int, device: str):
    return modelfile.load(path, torch.device(device))


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu"):
    """(TransformNet, ModelInfo) of a model file or built-in style, loaded once per process per file version."""
    resolved = paths.resolve(builtin.locate(path))
    try:
        mtime = resolved.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return _cached(str(resolved), mtime, str(device))


def needed_bytes(net: TransformNet, height: int, width: int) -> int:
    return BYTES_PER_PIXEL_PER_WIDTH * net.architecture.width * height * width


def choose_tile(net: TransformNet, shape: tuple[int, int], tile: int | None, device) -> int | None:
    """The tile side for an image of `shape`, or None to run it whole. `tile`: None auto, 0 never."""
    if tile == 0:
        return None
    if tile is not None:
        if tile < SMALLEST_TILE:
            raise ConfigError(f"--tile must be 0 (never) or at least {SMALLEST_TILE} px, got {tile}")
        return tile if max(shape) > tile else None
    budget = memory.available_bytes(device)
    if budget is None or needed_bytes(net, *shape) <= budget // 2:
        return None
    side = int((budget // 2 / (BYTES_PER_PIXEL_PER_WIDTH * net.architecture.width)) ** 0.5)
    return max(SMALLEST_TILE, side // MULTIPLE * MULTIPLE)


def _ramp(start: int, end: int, length: int, overlap: int) -> torch.Tensor:
    """Weights along one axis of a tile: 1 inside, rising linearly over `overlap` where a neighbour is."""
    weights = torch.ones(end - start)
    if overlap:
        up = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if start > 0:
            weights[:overlap] = up
        if end < length:
            weights[-overlap:] = up.flip(0)
    return weights


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    count = -(-(length - overlap) // (tile - overlap))
    stride = (length - tile) / (count - 1)
    return [(round(i * stride), round(i * stride) + tile) for i in range(count)]


@torch.no_grad()
def run_network(net: TransformNet, image: torch.Tensor, tile: int | None = None, precision: str = "fp32") -> torch.Tensor:
    """The network's output for `image` (1, 3, H, W) in [0, 1], clamped, fp32, on the image's device."""
    device = image.device
    if tile is None or max(image.shape[-2:]) <= tile:
        with autocast(device, precision):
            return net(image).float().clamp_(0, 1)
    height, width = image.shape[-2:]
    norms = net.norms()
    small = F.interpolate(image, scale_factor=tile / max(height, width), mode="bilinear", antialias=True,
                          align_corners=False)
    try:
        for norm in norms:
            norm.recording = True
        with autocast(device, precision):
            net(small)
        for norm in norms:
            norm.recording, norm.use_recorded = False, True
        overlap = max(8, tile // 8) // 2 * 2
        out = torch.zeros_like(image)
        weight = torch.zeros((1, 1, height, width), device=device)
        # Context beyond each tile so its border pixels see what the network's receptive field reaches.
        margin = min(64, tile // 4)
        for top, bottom in _spans(height, tile, overlap):
            for left, right in _spans(width, tile, overlap):
                # Crops start on the stride-4 grid of the whole image, so their downsampled maps
                # are the whole image's there (the same pixels meet the same kernels).
                t0, b0 = max(0, (top - margin) // MULTIPLE * MULTIPLE), min(height, -(-(bottom + margin) // MULTIPLE) * MULTIPLE)
                l0, r0 = max(0, (left - margin) // MULTIPLE * MULTIPLE), min(width, -(-(right + margin) // MULTIPLE) * MULTIPLE)
                with autocast(device, precision):
                    piece = net(image[..., t0:b0, l0:r0]).float()
                piece = piece[..., top - t0:top - t0 + bottom - top, left - l0:left - l0 + right - left]
                ramp = _ramp(top, bottom, height, overlap).to(device)[:, None] * \
                    _ramp(left, right, width, overlap).to(device)[None, :]
                out[..., top:bottom, left:right] += piece * ramp
                weight[..., top:bottom, left:right] += ramp
        return (out / weight).clamp_(0, 1)
    finally:
        for norm in norms:
            norm.recording, norm.use_recorded, norm.recorded = False, False, None


def finish(styled: torch.Tensor, content: torch.Tensor, strength: float = 1.0,
           preserve_color: bool = False) -> torch.Tensor:
    """Blend with the photo by `strength`, then keep the photo's colours if asked."""
    if preserve_color:
        from nstcli.image.colour import recombine

        styled = recombine(styled, content)
    if strength < 1:
        styled = content + strength * (styled - content)
    return styled.clamp(0, 1)


def stylize_image(net: TransformNet, content: torch.Tensor, *, strength: float = 1.0, preserve_color: bool = False,
                  tile: int | None = None, precision: str = "fp32", device=None) -> torch.Tensor:
    """A (1, 3, H, W) photo in [0, 1] -> the stylised image on the CPU, fp32."""
    device = device or next(net.parameters()).device
    image = prepare(content, device)
    side = choose_tile(net, tuple(image.shape[-2:]), tile, device)
    styled = run_network(net, image, side, precision)
    return finish(styled.cpu(), content.float().cpu(), strength, preserve_color)


def apply_to_file(model: str | os.PathLike, content: str | os.PathLike, *, size: int | None = None,
                  strength: float = 1.0, preserve_color: bool = False, device: torch.device | str = "cpu"):
    """(image, the model's header) of one photo file through `model`, in the precision `auto` picks."""
    net, info = load_model(model, device)
    photo = load_image(content, size)
    image = stylize_image(net, photo, strength=strength, preserve_color=preserve_color, device=device,
                          precision=resolve_precision("auto", next(net.parameters()).device, FAST_PRECISIONS))
    return image, info


@dataclass(frozen=True)
class ApplyItem:
    source: Path
    output: Path
    name: str  # output relative to the output folder ('/'-separated): what shards hash

    @property
    def label(self) -> str:
        return str(self.source)

    def fields(self) -> dict[str, str]:
        return {"input": str(self.source), "output": str(self.output)}


def single_output(inputs: Sequence[str], output: str) -> bool:
    """One input file and an -o with an image extension: write exactly that file."""
    return (len(inputs) == 1 and not Path(inputs[0]).is_dir() and Path(output).suffix.lower() in OUTPUT_FORMATS
            and not output.endswith(("/", os.sep)))


def plan(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *, fmt: str = "png",
         shard: tuple[int, int] | None = None, model: str | os.PathLike | None = None) -> list[ApplyItem]:
    """What to write where; reads folder listings only. No output may be an input or the `model`."""
    output = str(output)
    if single_output([str(p) for p in inputs], output):
        check_output_name(output)
        refuse_overwriting_inputs(output, [*inputs, *([model] if model is not None else [])])
        items = [ApplyItem(Path(inputs[0]), Path(output), Path(output).name)]
    else:
        fmt = fmt.lower().lstrip(".")
        if "." + fmt not in OUTPUT_FORMATS:
            raise ConfigError(f"--format {fmt!r} is not one of {', '.join(e.lstrip('.') for e in OUTPUT_FORMATS)}")
        outdir = Path(output)
        if outdir.exists() and not outdir.is_dir():
            raise ConfigError(f"-o {outdir} is a file; with a folder or several inputs give an output folder")
        found = find_contents(inputs, outdir, recursive=True)
        if not found:
            raise ConfigError(f"no images found in {', '.join(map(str, inputs))} (folders give their files ending "
                              f"in {' '.join(IMAGE_EXTENSIONS)}, subfolders included)")
        items, claimed = [], {}
        for source, sub in found:
            name = (sub / f"{source.stem}.{fmt}").as_posix()
            if name.casefold() in claimed:
                raise ConfigError(f"{claimed[name.casefold()]} and {source} would both be written to "
                                  f"{outdir / name}; rename one of them or run them separately")
            claimed[name.casefold()] = source
            items.append(ApplyItem(source, outdir / PurePosixPath(name), name))
        refuse_overwriting_inputs([item.output for item in items],
                                  [source for source, _ in found] + ([model] if model is not None else []))
    if shard is not None:
        k, n = shard
        items = [item for item in items if shard_of(item.name, n) == k]
    return items


def check_outputs(items: Sequence[ApplyItem], overwrite: bool = False) -> None:
    """Every folder the items to do write into made and writable before the model is loaded
    (outputs.py): a folder that cannot be made is one error, not a failure per image."""
    for folder in dict.fromkeys(item.output.parent for item in items if overwrite or not item.output.exists()):
        prepare_folder(folder)


def _status(item: ApplyItem, overwrite: bool) -> ItemResult | None:
    """The result of an item that is not to be computed (skipped, or blocked by a folder); None to compute it."""
    if item.output.is_dir():  # not a result from an earlier run: a re-run must not count it as done
        return ItemResult(item, "failed", 0.0, f"{item.output} is a folder, not an image; move it away and "
                                               "run the same command again")
    if item.output.exists() and not overwrite:
        return ItemResult(item, "skipped")
    return None


def run(model: str | os.PathLike, items: Sequence[ApplyItem], settings: ApplySettings = ApplySettings(), *,
        overwrite: bool = False, callbacks: Sequence[Callback] = ()) -> Iterator[ItemResult]:
    """Stylise each item (model loaded once, before the first); a bad photo fails only its own item.

    A pipeline, so that the network never waits for the disk: while the network runs on one photo,
    a reader thread decodes the next and a writer thread encodes and writes the previous result
    (Pillow's decoders and zlib release the GIL). Results still come in the items' order, each
    once its file is written, and a failure is still the item's own. `callbacks` hear each item's
    start (`on_item`).
    (open_image gathers Pillow's warnings with warnings.catch_warnings,
    which is process-wide; the network's pass, the one thing running beside a read, issues none.)
    """
    from concurrent.futures import ThreadPoolExecutor
    from nstcli.runtime import resolve_device

    settings = checked(settings)
    torch_device = resolve_device(settings.device)
    precision = resolve_precision(settings.precision, torch_device, FAST_PRECISIONS)
    check_outputs(items, overwrite)
    net, _ = load_model(model, torch_device)
    todo = [index for index, item in enumerate(items) if _status(item, overwrite) is None]
    reader, writer = ThreadPoolExecutor(1, "nst-read"), ThreadPoolExecutor(1, "nst-write")
    reads: dict[int, object] = {}
    pending = None  # (item, started, the write's future) of the result being written

    def prefetch(after: int) -> None:
        following = next((index for index in todo if index > after), None)
        if following is not None and following not in reads:
            reads[following] = reader.submit(load_image, items[following].source, settings.size)

    def written() -> ItemResult:
        item, started, future = pending
        try:
            future.result()
        except ImageError as exc:
            return ItemResult(item, "failed", time.perf_counter() - started, str(exc))
        except WriteError as exc:  # the next items would meet the same full disk or folder: stop
            raise WriteError(f"{exc}; stopped there: finished outputs are kept and running the same command again "
                             "skips them", exc.path, exc.errno) from None
        return ItemResult(item, "done", time.perf_counter() - started)

    current = None
    try:
        for index, item in enumerate(items):
            current = item
            status = _status(item, overwrite)
            if status is not None:
                reads.pop(index, None)
                if pending is not None:
                    yield written()
                    pending = None
                yield status
                continue
            started = time.perf_counter()
            notify(callbacks, "on_item", item.name)
            loading = reads.pop(index, None)
            try:
                check_output_path(item.output)
                content = loading.result() if loading is not None else load_image(item.source, settings.size)
                prefetch(index)
                image = stylize_image(net, content, strength=settings.strength, preserve_color=settings.preserve_color,
                                      tile=settings.tile, precision=precision, device=torch_device)
            except ImageError as exc:
                prefetch(index)
                failed = ItemResult(item, "failed", time.perf_counter() - started, str(exc))
                if pending is not None:
                    yield written()
                    pending = None
                yield failed
                continue
            if pending is not None:
                yield written()
            pending = (item, started, writer.submit(save_image, image, item.output))
        if pending is not None:
            current = pending[0]
            yield written()
            pending = None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted during {current.source if current else 'the first image'}; its output "
                          "was not written; run the same command again to resume") from None
    finally:
        # A write under way finishes (atomically: the file is whole or absent); reads not needed are dropped.
        for future in reads.values():
            future.cancel()
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True)
