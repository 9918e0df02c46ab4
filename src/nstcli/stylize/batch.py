"""Many content images x many styles in one process: plan the work, run it, sum it up.

Starting `nst stylize` once per file pays for Python, torch and the network every time. A batch
loads the network once and builds each style's Gram matrices once (`single.PreparedStyle`), then
stylizes every content image with every style.

- Plan: `jobs.inputs.find_contents` finds the content images (subfolders kept with `recursive`).
  Each content x style pair is one item written to
  OUTDIR/[subfolder/]<content-stem>__<style-stem>.<ext>. Two items that would still write the same
  file (x.jpg and x.png side by side, or the same name in two input folders) are refused before
  anything runs: silently renaming one would make outputs hard to find and resume.
- Shards: `jobs.shards` says which shard an item belongs to (a hash of its output name), so shards
  started at different times agree on who does what.
- Plan: `plan_status` says, without computing, which items are done (their output exists) and
  which shard each belongs to, so a user sees what a cluster run left undone.
- Run: an item whose output exists is skipped (unless `overwrite`), so a re-run resumes. A bad
  content image or a failed optimisation marks that item failed and the batch goes on; what would
  fail every item (weights, a bad style image, the output folder) stops it before the first item.
  Ctrl-C stops it with the current item unwritten, so a re-run redoes that item.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nstcli import paths
from nstcli.config.fields import Config
from nstcli.errors import ConfigError, ImageError, Interrupted, RunError
from nstcli.image.io import OUTPUT_FORMATS, check_output_path, refuse_overwriting_inputs
from nstcli.jobs.inputs import IMAGE_EXTENSIONS, find_contents
from nstcli.jobs.shards import shard_of

if TYPE_CHECKING:  # planning imports no torch, so the CLI reports a bad path at once
    from nstcli.reports import Callback

# Output formats by name, as --format takes them: png, jpg, jpeg, webp, tif, tiff.
FORMATS = tuple(ext.lstrip(".") for ext in OUTPUT_FORMATS)
SEPARATOR = "__"  # between the content and the style stem in an output name


@dataclass(frozen=True)
class BatchItem:
    """One content image with one style, and where its result goes."""

    content: Path
    style: Path
    outdir: Path
    name: str  # the output's path relative to `outdir`, '/'-separated; what shards hash
    content_mask: Path | None = None  # from --content-masks DIR, matched by the content's name
    style_mask: Path | None = None  # from --style-masks DIR: where this photo gets the style

    def masks(self):
        """The item's SpatialControl, or None without masks."""
        if self.content_mask is None and self.style_mask is None:
            return None
        from nstcli.stylize.masks import SpatialControl

        return SpatialControl([self.style_mask] if self.style_mask else (), content_mask=self.content_mask)

    @property
    def output(self) -> Path:
        return self.outdir / self.name


@dataclass
class ItemResult:
    """What happened to one item: done, skipped (its output existed) or failed (with the reason)."""

    item: BatchItem
    status: str
    seconds: float = 0.0
    error: str | None = None
    precision: str | None = None  # of the network that made a done item ("fp32", "bf16", ...)

    def summary(self) -> dict:
        """A JSON-ready description (one line of `nst batch --json`)."""
        return {"input": str(self.item.content), "style": str(self.item.style),
                "output": str(self.item.output), "status": self.status,
                "seconds": round(self.seconds, 3), "error": self.error, "precision": self.precision}


def plan_batch(
    inputs: Sequence[str | os.PathLike],
    styles: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    *,
    recursive: bool = False,
    fmt: str = "png",
    shard: tuple[int | None, int] | None = None,
    content_masks: str | os.PathLike | None = None,
    style_masks: str | os.PathLike | None = None,
) -> list[BatchItem]:
    """Every content image x every style, in a fixed order; only shard K of N when `shard` is (K, N).

    (None, N) keeps every item, as no `shard` does.

    `content_masks` / `style_masks` are folders holding one mask per content image with the same
    name (photos/sub/x.jpg <-> masks/sub/x.png, any image extension); a content image without one
    is refused here, before anything runs.

    Nothing is read but folder listings, so every mistake here is found before any computing.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not styles:
        raise ConfigError("give at least one style image with --style")
    outdir = Path(outdir)
    if paths.kind(outdir) == paths.LOOP:
        raise ConfigError(f"output folder {outdir} is a symbolic link loop; give a folder to -o")
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"output folder {outdir} is a file; give a folder to -o")
    style_paths, seen = [], set()
    for style in map(Path, styles):
        if not style.is_file():
            what = {paths.FOLDER: "is a folder, not an image file",
                    paths.LOOP: "is a symbolic link loop; point it at an image file",
                    paths.OTHER: "is not a regular file; give an image file"}.get(
                        paths.kind(style), "does not exist; check the path")
            raise ImageError(f"style image {style} {what}")
        if style.resolve() not in seen:
            seen.add(style.resolve())
            style_paths.append(style)
    contents = find_contents(inputs, outdir, recursive)
    if not contents:
        hint = "" if recursive else "; add --recursive to look in subfolders"
        raise ConfigError(f"no images found in {', '.join(map(str, inputs))} (folders give their files "
                          f"ending in {' '.join(IMAGE_EXTENSIONS)}){hint}")
    items: list[BatchItem] = []
    claimed: dict[str, BatchItem] = {}
    for content, sub in contents:
        found = {flag: _mask_for(folder, flag, content, sub) for flag, folder in
                 (("--content-masks", content_masks), ("--style-masks", style_masks))}
        for style in style_paths:
            name = (sub / f"{content.stem}{SEPARATOR}{style.stem}.{fmt}").as_posix()
            # casefold: on macOS and Windows X.jpg and x.jpg are the same file.
            other = claimed.get(name.casefold())
            if other is not None:
                raise ConfigError(
                    f"{other.content} with style {other.style} and {content} with style {style} would both "
                    f"be written to {outdir / name}; rename one of the files or run them separately")
            item = BatchItem(content, style, outdir, name, found["--content-masks"], found["--style-masks"])
            claimed[name.casefold()] = item
            items.append(item)
    # An earlier result given back as an input (results/a__s.png with -o results) must not be
    # overwritten by another item: refused for the whole batch, whichever shard would write it.
    refuse_overwriting_inputs([item.output for item in items], [path for path, _ in contents] + style_paths)
    if shard is not None and shard[0] is not None:
        k, n = shard
        items = [item for item in items if shard_of(item.name, n) == k]
    return items


def _mask_for(folder, flag: str, content: Path, sub: PurePosixPath) -> Path | None:
    if folder is None:
        return None
    from nstcli.stylize.mask_files import MASK_EXTENSIONS, find_mask

    if not Path(folder).is_dir():
        raise ConfigError(f"{flag} {folder} is not a folder; give the folder holding one mask per content image")
    mask = find_mask(folder, sub, content.stem)
    if mask is None:
        where = Path(folder) / Path(*sub.parts) / content.stem if sub.parts else Path(folder) / content.stem
        raise ImageError(f"no mask for {content} in {flag} {folder} (looked for {where}.png, "
                         f"{', '.join(e for e in MASK_EXTENSIONS[1:])}); add one or leave the image out")
    return mask


@dataclass(frozen=True)
class PlannedItem:
    """One item as `nst batch --plan` lists it: its shard (of `shards`) and whether it is done."""

    item: BatchItem
    shard: int | None  # 1..shards, or None when the batch is not sharded
    shards: int | None
    done: bool

    def summary(self) -> dict:
        """A JSON-ready description (one line of `nst batch --plan --json`)."""
        return {"input": str(self.item.content), "style": str(self.item.style),
                "output": str(self.item.output), "shard": self.shard, "shards": self.shards,
                "status": "done" if self.done else "todo"}


def plan_status(items: Sequence[BatchItem], shards: int | None = None,
                overwrite: bool = False) -> list[PlannedItem]:
    """Each item with its shard of `shards` and whether a run would skip it; reads only the file system.

    Done means what a run means by it: the output exists (and `overwrite` is off). An item being
    computed right now is not done: its output appears only when it is finished.
    """
    return [PlannedItem(item, shard_of(item.name, shards) if shards else None, shards,
                        item.output.exists() and not overwrite) for item in items]


@dataclass
class BatchRun:
    """A started batch: `len()` items planned; iterating stylizes them one by one, yielding ItemResults."""

    items: list[BatchItem]
    results: Iterator[ItemResult]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ItemResult]:
        return self.results


def run_batch(
    items: Sequence[BatchItem],
    config: Config = Config(),
    *,
    overwrite: bool = False,
    callbacks: Callable[[BatchItem], Sequence[Callback]] | None = None,
) -> BatchRun:
    """Load the network and open the styles now, so what would fail every item fails here; then run lazily.

    `callbacks(item)` gives the engine callbacks for one item (e.g. a per-image progress bar).
    """
    # Imported here, not at the top: planning (nst batch --plan) needs none of the network code.
    from nstcli.stylize import single
    from nstcli.network import weights as weights_module
    from nstcli.runtime import resolve_device, resolve_precision

    items = list(items)
    # Each style is used on its own, so blend weights (from a --config file; nst batch has no
    # --style-blend) would be silently ignored: refuse them instead.
    if config.style_blend:
        raise ConfigError("'style_blend' does not apply to nst batch: every style is used on its own; "
                          "drop it (or run nst stylize to blend styles)")
    if not any(overwrite or not item.output.exists() for item in items):
        # Everything is done (e.g. a re-submitted array task whose items another run finished):
        # nothing to load, and ImageNet weights are half a gigabyte to read.
        return BatchRun(items, _results(items, {}, config, overwrite, callbacks))
    device = resolve_device(config.device)
    todo = [item for item in items if overwrite or not item.output.exists()]
    prepared: dict[Path, single.PreparedStyle] = {}
    for item in todo:
        if item.style not in prepared:
            prepared[item.style] = single.PreparedStyle(item.style)
            prepared[item.style].images()
    # A budget or tiling the run would refuse is a usage error of the whole batch: said now, before
    # the output folder exists or the network is loaded, not at the first item.
    _check_plans(todo, prepared, config, device)
    # Checks (and creates) the output folder itself; the file name is only there to satisfy the check.
    check_output_path(items[0].outdir / PurePosixPath(items[0].name).name)
    # Say it once for the batch, here (as for the precision); the per-item runs below are told not to
    # repeat either.
    weights_module.warn_if_random(config.weights)
    precision = resolve_precision(config.precision, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", weights_module.RandomWeightsWarning)
        single.load_network(config, device, precision=precision)  # cached: every item reuses this network
    return BatchRun(items, _results(items, prepared, config, overwrite, callbacks))


def _check_plans(items: Sequence[BatchItem], prepared, config: Config, device) -> None:
    """single.plan_scales for every item from its content's header (no pixel decoded); ConfigError if any
    is refused. An unreadable content image is left to fail its own item later."""
    from PIL import Image

    from nstcli.stylize import single

    seen = set()
    for item in items:
        try:
            with Image.open(item.content) as image:
                size = image.size
        except Exception:  # noqa: BLE001 - the item's own run reports it, and fails only that item
            continue
        key = (size, item.style, item.style_mask is not None)
        if key not in seen:
            seen.add(key)
            single.plan_scales(config, size, prepared[item.style], device, masks=item.masks())


def _results(items, prepared, config, overwrite, callbacks) -> Iterator[ItemResult]:
    from nstcli.stylize import single
    from nstcli.errors import PrecisionWarning
    from nstcli.network.weights import RandomWeightsWarning

    for item in items:
        if item.output.exists() and not overwrite:
            yield ItemResult(item, "skipped")
            continue
        started = time.perf_counter()
        before = _identity(item.output)
        try:
            with warnings.catch_warnings():
                # Said once by run_batch; not again for every item.
                warnings.simplefilter("ignore", RandomWeightsWarning)
                warnings.simplefilter("ignore", PrecisionWarning)
                if item.style not in prepared:
                    # Only when all its outputs were there as the batch started and one has gone since.
                    prepared[item.style] = single.PreparedStyle(item.style)
                done = single.stylize(item.content, prepared[item.style], item.output, config=config,
                                   callbacks=list(callbacks(item)) if callbacks else (), save_on_interrupt=False,
                                   masks=item.masks())
            result = ItemResult(item, "done", time.perf_counter() - started, precision=done.precision)
        except (ImageError, RunError) as exc:
            result = ItemResult(item, "failed", time.perf_counter() - started, str(exc))
        except (Interrupted, KeyboardInterrupt):
            if _identity(item.output) not in (None, before):
                # Stopped after the (atomic) save, while stylize was finishing up: the output is
                # complete and a re-run skips it, so it counts as done.
                yield ItemResult(item, "done", time.perf_counter() - started)
                raise Interrupted(f"interrupted just after writing {item.output}; run the same command "
                                  "again to resume") from None
            raise Interrupted(f"interrupted during {item.content} with style {item.style}; its output was "
                              "not written; run the same command again to resume") from None
        yield result


def _identity(path: Path) -> tuple[int, int] | None:
    """What tells a freshly written file from the one before it: an atomic write makes a new inode."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


@dataclass
class BatchSummary:
    """Counts as results come in (the CLI turns them into the closing lines)."""

    planned: int
    shard: tuple[int, int] | None = None
    done: int = 0
    skipped: int = 0
    failed: list[ItemResult] = field(default_factory=list)

    def add(self, result: ItemResult) -> None:
        if result.status == "done":
            self.done += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append(result)

    @property
    def finished(self) -> int:
        return self.done + self.skipped + len(self.failed)
