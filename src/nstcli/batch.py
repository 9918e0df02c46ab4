"""Many content images x many styles in one process: plan the work, run it, sum it up.

Starting `nst stylize` once per file pays for Python, torch and the network every time. A batch
loads the network once and builds each style's Gram matrices once (`api.PreparedStyle`), then
stylizes every content image with every style.

- Plan: files named as inputs are taken whatever their extension; folders give their files with an
  image extension, sorted, hidden files and folders skipped; `recursive` descends into subfolders
  and keeps each file's subfolder under the output folder (two cameras' IMG_0001.jpg in different
  folders stay apart). Each content x style pair is one item written to
  OUTDIR/[subfolder/]<content-stem>__<style-stem>.<ext>. Two items that would still write the same
  file (x.jpg and x.png side by side, or the same name in two input folders) are refused before
  anything runs: silently renaming one would make outputs hard to find and resume.
- Shards: an item belongs to shard K of N when a hash of its output name is K - 1 modulo N. That
  depends on nothing but the item, so shards started at different times agree on who does what even
  if outputs appear in between.
- Run: an item whose output exists is skipped (unless `overwrite`), so a re-run resumes. A bad
  content image or a failed optimisation marks that item failed and the batch goes on; what would
  fail every item (weights, a bad style image, the output folder) stops it before the first item.
  Ctrl-C stops it with the current item unwritten, so a re-run redoes that item.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nstcli import paths
from nstcli.config import Config
from nstcli.errors import ConfigError, ImageError, Interrupted, RunError
from nstcli.images import OUTPUT_FORMATS, check_output_path, refuse_overwriting_inputs

if TYPE_CHECKING:  # planning imports no torch, so the CLI reports a bad path at once
    from nstcli.engine import Callback

# What a folder contributes. Files named on the command line are taken whatever their extension.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
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

    def summary(self) -> dict:
        """A JSON-ready description (one line of `nst batch --json`)."""
        return {"input": str(self.item.content), "style": str(self.item.style),
                "output": str(self.item.output), "status": self.status,
                "seconds": round(self.seconds, 3), "error": self.error}


def parse_shard(spec: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N, or ConfigError (a usage error)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if match:
        k, n = int(match.group(1)), int(match.group(2))
        if 1 <= k <= n:
            return k, n
    raise ConfigError(f"--shard {spec!r} is not K/N with 1 <= K <= N; e.g. --shard 2/4 runs the "
                      "second quarter of the items")


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) an output name belongs to: stable across runs, machines and Pythons."""
    # sha256 rather than hash(): Python salts str hashes per process.
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _folder_images(folder: Path, outdir: Path, recursive: bool) -> list[tuple[Path, PurePosixPath]]:
    def unreadable(error: OSError):
        raise ImageError(f"cannot read folder {error.filename} ({error.strerror}); fix its permissions "
                         "or leave it out")

    found = []
    for root, dirs, files in os.walk(folder, onerror=unreadable):
        root = Path(root)
        # Never descend into the output folder: its results would come back as inputs on a re-run.
        dirs[:] = sorted(d for d in dirs if recursive and not _hidden(d) and paths.resolve(root / d) != outdir)
        sub = PurePosixPath(root.relative_to(folder).as_posix())
        for name in files:
            if not _hidden(name) and Path(name).suffix.lower() in IMAGE_EXTENSIONS and (root / name).is_file():
                found.append((root / name, sub))
    return sorted(found, key=lambda entry: (entry[1].parts, entry[0].name))


def find_contents(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike,
                  recursive: bool = False) -> list[tuple[Path, PurePosixPath]]:
    """(content image, subfolder it goes to under the output folder), in input order, each file once."""
    outdir = paths.resolve(outdir)
    found, seen = [], set()
    for given in inputs:
        path = Path(given)
        kind = paths.kind(path)
        if kind == paths.LOOP:
            raise ImageError(f"input {path} is a symbolic link loop; point it at an image or a folder")
        if kind == paths.MISSING:
            raise ImageError(f"input {path} does not exist; check the path")
        if path.is_dir():
            if path.resolve() == outdir:
                raise ConfigError(f"the output folder {path} is also an input folder, so results would "
                                  "be read as inputs on a re-run; choose another -o")
            entries = _folder_images(path, outdir, recursive)
        else:
            entries = [(path, PurePosixPath())]
        for file, sub in entries:
            if file.resolve() not in seen:  # a file named twice (or inside a folder also given) runs once
                seen.add(file.resolve())
                found.append((file, sub))
    return found


def plan_batch(
    inputs: Sequence[str | os.PathLike],
    styles: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    *,
    recursive: bool = False,
    fmt: str = "png",
    shard: tuple[int, int] | None = None,
) -> list[BatchItem]:
    """Every content image x every style, in a fixed order; only shard K of N when `shard` is given.

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
        for style in style_paths:
            name = (sub / f"{content.stem}{SEPARATOR}{style.stem}.{fmt}").as_posix()
            # casefold: on macOS and Windows X.jpg and x.jpg are the same file.
            other = claimed.get(name.casefold())
            if other is not None:
                raise ConfigError(
                    f"{other.content} with style {other.style} and {content} with style {style} would both "
                    f"be written to {outdir / name}; rename one of the files or run them separately")
            item = BatchItem(content, style, outdir, name)
            claimed[name.casefold()] = item
            items.append(item)
    # An earlier result given back as an input (results/a__s.png with -o results) must not be
    # overwritten by another item: refused for the whole batch, whichever shard would write it.
    refuse_overwriting_inputs([item.output for item in items], [path for path, _ in contents] + style_paths)
    if shard is not None:
        k, n = shard
        items = [item for item in items if shard_of(item.name, n) == k]
    return items


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
    from nstcli import api
    from nstcli import weights as weights_module
    from nstcli.runtime import resolve_device

    items = list(items)
    # Each style is used on its own, so blend weights (a config key once blending lives in the
    # config) would be silently ignored: refuse them instead.
    if getattr(config, "style_blend", None):
        raise ConfigError("'style_blend' does not apply to nst batch: every style is used on its own; "
                          "drop it (or run nst stylize to blend styles)")
    if not items:
        return BatchRun(items, iter(()))
    # Checks (and creates) the output folder itself; the file name is only there to satisfy the check.
    check_output_path(items[0].outdir / PurePosixPath(items[0].name).name)
    # Say it once for the batch, here; the per-item runs below are told not to repeat it.
    weights_module.warn_if_random(config.weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", weights_module.RandomWeightsWarning)
        api.load_network(config, resolve_device(config.device))  # cached: every item reuses this network
    prepared: dict[Path, api.PreparedStyle] = {}
    for item in items:
        if item.style not in prepared:
            prepared[item.style] = api.PreparedStyle(item.style)
            prepared[item.style].images()
    return BatchRun(items, _results(items, prepared, config, overwrite, callbacks))


def _results(items, prepared, config, overwrite, callbacks) -> Iterator[ItemResult]:
    from nstcli import api
    from nstcli.weights import RandomWeightsWarning

    for item in items:
        if item.output.exists() and not overwrite:
            yield ItemResult(item, "skipped")
            continue
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # Said once by run_batch; not again for every item.
                warnings.simplefilter("ignore", RandomWeightsWarning)
                api.stylize(item.content, prepared[item.style], item.output, config=config,
                            callbacks=list(callbacks(item)) if callbacks else (), save_on_interrupt=False)
            result = ItemResult(item, "done", time.perf_counter() - started)
        except (ImageError, RunError) as exc:
            result = ItemResult(item, "failed", time.perf_counter() - started, str(exc))
        except (Interrupted, KeyboardInterrupt):
            raise Interrupted(f"interrupted during {item.content} with style {item.style}; its output was "
                              "not written; run the same command again to resume") from None
        yield result


@dataclass
class BatchSummary:
    """Counts as results come in, and the closing lines for stderr."""

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

    def lines(self) -> list[str]:
        where = f" in shard {self.shard[0]}/{self.shard[1]}" if self.shard else ""
        items = "item" if self.planned == 1 else "items"
        head = (f"batch: {self.done} done, {self.skipped} skipped, {len(self.failed)} failed "
                f"of {self.planned} {items}{where}")
        if self.finished < self.planned:
            head += f", {self.planned - self.finished} not run"
        return [head] + [f"failed: {r.item.content} with style {r.item.style}: {r.error}" for r in self.failed]

    def error(self) -> str:
        items = "item" if self.planned == 1 else "items"
        return (f"{len(self.failed)} of {self.planned} {items} failed (listed above); fix or remove those "
                "files and run the same command again: finished outputs are skipped")


class BatchProgress:
    """The outer bar on stderr: items finished of planned, with done / skipped / failed counts."""

    def __init__(self, total: int):
        from tqdm import tqdm

        # Redraw often on a terminal, rarely into a log file (a cluster job's stderr).
        interval = 0.2 if sys.stderr.isatty() else 10.0
        self.bar = tqdm(total=total, desc="batch", unit="item", file=sys.stderr, dynamic_ncols=True,
                        position=0, mininterval=interval)

    def update(self, summary: BatchSummary) -> None:
        # A dict, not keywords: tqdm sorts keyword postfixes, and done/skipped/failed reads better.
        self.bar.set_postfix({"done": summary.done, "skipped": summary.skipped, "failed": len(summary.failed)},
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
