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
  if outputs appear in between. `--shard auto` reads K and N from a scheduler's array index
  (`shard_from_environment`), so one job script serves every task of an array.
- Plan: `plan_status` says, without computing, which items are done (their output exists) and
  which shard each belongs to, so a user sees what a cluster run left undone.
- Run: an item whose output exists is skipped (unless `overwrite`), so a re-run resumes. A bad
  content image or a failed optimisation marks that item failed and the batch goes on; what would
  fail every item (weights, a bad style image, the output folder) stops it before the first item.
  Ctrl-C stops it with the current item unwritten, so a re-run redoes that item.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nstcli import paths
from nstcli.config.fields import Config
from nstcli.errors import ConfigError, ImageError, Interrupted, RunError
from nstcli.image.io import OUTPUT_FORMATS, check_output_path, refuse_overwriting_inputs

if TYPE_CHECKING:  # planning imports no torch, so the CLI reports a bad path at once
    from nstcli.reports import Callback

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


def parse_shard(spec: str, environ: Mapping[str, str] | None = None,
                allow_all: bool = False) -> tuple[int | None, int]:
    """--shard's value -> (K, N), or ConfigError (a usage error).

    'K/N' is given by hand; 'auto' and 'auto/N' take K (and N) from the scheduler's environment
    (`shard_from_environment`). With `allow_all` (nst batch --plan), 'all/N' gives (None, N): every
    item, each with its shard of N.
    """
    text = (spec or "").strip().lower()
    shown = _shown(spec)
    counted = re.fullmatch(r"(auto|all)\s*(?:/\s*(\d+))?", text)
    if counted:
        form, count = counted.group(1), _count(counted.group(2), shown) if counted.group(2) else None
        if count == 0:
            raise ConfigError(f"--shard {shown}: N must be at least 1; give the number of tasks, e.g. "
                              f"--shard {form}/8")
        if form == "auto":
            return shard_from_environment(os.environ if environ is None else environ, count)
        if count is None:
            raise ConfigError(f"--shard {shown} needs the number of shards: --shard all/N")
        if not allow_all:
            raise ConfigError(f"--shard {shown} only goes with --plan (to list every item with its shard); "
                              "to run every item, drop --shard")
        return None, count
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if match:
        k, n = _count(match.group(1), shown), _count(match.group(2), shown)
        if 1 <= k <= n:
            return k, n
    raise ConfigError(f"--shard {shown} is not K/N with 1 <= K <= N; e.g. --shard 2/4 runs the "
                      "second quarter of the items (or --shard auto inside a SLURM array or a "
                      "Kubernetes Indexed Job)")


# More shards than this is no cluster; the cap also keeps numbers of thousands of digits (which
# Python's int() refuses beyond 4300) out of int() and out of messages.
MAX_SHARDS = 1_000_000


def _shown(text: str | None) -> str:
    """A typed value as a message quotes it: at most 40 characters of it."""
    text = text or ""
    return repr(text) if len(text) <= 40 else repr(text[:30] + "...") + f" ({len(text)} characters)"


def _count(digits: str, shown: str) -> int:
    """K or N of --shard, or ConfigError when it is beyond MAX_SHARDS."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(MAX_SHARDS)) or int(digits) > MAX_SHARDS:
        raise ConfigError(f"--shard {shown}: a shard number or count is at most {MAX_SHARDS:,}; "
                          "give K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(digits)


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"--shard auto: {name}={_shown(value)} is not a whole number; it is set by the "
                          "scheduler, so check the job's environment")
    digits = value.lstrip("0") or "0"
    # A scheduler's index is a few digits; thousands of them (beyond what int() converts) are a
    # broken environment, said as such rather than as Python's limit.
    if len(digits) > 18:
        raise ConfigError(f"--shard auto: {name}={_shown(value)} has {len(digits)} digits, more than any "
                          "scheduler's index; it is set by the scheduler, so check the job's environment")
    return int(digits)


def shard_from_environment(environ: Mapping[str, str], count: int | None = None) -> tuple[int, int]:
    """K and N from a SLURM job array or a Kubernetes Indexed Job; `count` is N when given (auto/N).

    - SLURM (`sbatch --array=1-8`): K is the task's place in the array, N the array's size, from
      SLURM_ARRAY_TASK_ID, _MIN and _MAX (or _COUNT when MIN and MAX are missing, the array then
      numbered from 1), so --array=0-7 works as well as 1-8. With auto/N the task ID itself is K
      (1..N): that lets a re-submission run only some tasks, e.g. --array=3,5 of 8.
    - Kubernetes (`completionMode: Indexed`): JOB_COMPLETION_INDEX (0-based) + 1 is K. Kubernetes
      does not tell the pod how many completions there are, so N must be given: auto/N.
    """
    task = _env_int(environ, "SLURM_ARRAY_TASK_ID")
    if task is not None:
        if count is not None:
            if not 1 <= task <= count:
                raise ConfigError(f"--shard auto/{count}: SLURM_ARRAY_TASK_ID is {task}, not 1..{count}; "
                                  f"number the array from 1 (sbatch --array=1-{count})")
            return task, count
        low, high = _env_int(environ, "SLURM_ARRAY_TASK_MIN"), _env_int(environ, "SLURM_ARRAY_TASK_MAX")
        size = _env_int(environ, "SLURM_ARRAY_TASK_COUNT")
        if low is not None and high is not None:
            # A list or a step (--array=1,3,8 or 0-15:4) leaves holes: K would not run 1..N.
            if size is not None and size != high - low + 1:
                raise ConfigError(f"--shard auto: the SLURM array has {size} tasks numbered {low} to {high} "
                                  "with gaps; submit a plain range (--array=1-N), or number the tasks 1..N "
                                  "and give the count: --shard auto/N")
            if low <= task <= high:
                return task - low + 1, high - low + 1
            raise ConfigError(f"--shard auto: SLURM_ARRAY_TASK_ID is {task}, outside the array's "
                              f"SLURM_ARRAY_TASK_MIN..MAX ({low}..{high}); check the job's environment, or "
                              "number the tasks 1..N and give the count: --shard auto/N")
        elif size is not None:
            if 1 <= task <= size:
                return task, size
            raise ConfigError(f"--shard auto: SLURM_ARRAY_TASK_ID is {task}, outside 1..{size} "
                              f"(SLURM_ARRAY_TASK_COUNT is {size}); check the job's environment, or give the "
                              "count: --shard auto/N")
        raise ConfigError(f"--shard auto: SLURM_ARRAY_TASK_ID is {task} but the array's size is not known "
                          "from SLURM_ARRAY_TASK_MIN/MAX/COUNT; give it: --shard auto/N")
    index = _env_int(environ, "JOB_COMPLETION_INDEX")
    if index is not None:
        if count is None:
            raise ConfigError(f"--shard auto: JOB_COMPLETION_INDEX is {index} (a Kubernetes Indexed Job), "
                              "which does not tell the pod the number of completions; give it: "
                              "--shard auto/N with N the Job's completions")
        if index >= count:
            raise ConfigError(f"--shard auto/{count}: JOB_COMPLETION_INDEX is {index}, not 0..{count - 1}; "
                              "make N the Job's completions")
        return index + 1, count
    raise ConfigError("--shard auto found no scheduler index: neither SLURM_ARRAY_TASK_ID (sbatch --array) "
                      "nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, with --shard auto/N) is set; "
                      "outside a scheduler give --shard K/N")


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
    from nstcli.stylize.masks import MASK_EXTENSIONS, find_mask

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
    from nstcli import api
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
    prepared: dict[Path, api.PreparedStyle] = {}
    for item in todo:
        if item.style not in prepared:
            prepared[item.style] = api.PreparedStyle(item.style)
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
        api.load_network(config, device, precision=precision)  # cached: every item reuses this network
    return BatchRun(items, _results(items, prepared, config, overwrite, callbacks))


def _check_plans(items: Sequence[BatchItem], prepared, config: Config, device) -> None:
    """api.plan_scales for every item from its content's header (no pixel decoded); ConfigError if any
    is refused. An unreadable content image is left to fail its own item later."""
    from PIL import Image

    from nstcli import api

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
            api.plan_scales(config, size, prepared[item.style], device, masks=item.masks())


def _results(items, prepared, config, overwrite, callbacks) -> Iterator[ItemResult]:
    from nstcli import api
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
                    prepared[item.style] = api.PreparedStyle(item.style)
                done = api.stylize(item.content, prepared[item.style], item.output, config=config,
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
