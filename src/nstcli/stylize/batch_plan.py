"""A batch planned, without computing: every content image x every style as one item, its output
name, its masks and its shard; and which items are done, for `nst batch --plan`.

- `jobs.inputs.find_contents` finds the content images (subfolders kept with `recursive`). Each
  content x style pair is one item written to OUTDIR/[subfolder/]<content-stem>__<style-stem>.<ext>.
  Two items that would still write the same file (x.jpg and x.png side by side, or the same name in
  two input folders) are refused before anything runs: silently renaming one would make outputs hard
  to find and resume.
- Shards: `jobs.shards` says which shard an item belongs to (a hash of its output name), so shards
  started at different times agree on who does what.
- `plan_status` says, without computing, which items are done (their output exists) and which shard
  each belongs to, so a user sees what a cluster run left undone.

Nothing here imports torch, so the CLI reports a bad path at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nstcli import paths
from nstcli.errors import ConfigError, ImageError
from nstcli.image.io import refuse_overwriting_inputs
from nstcli.outputs import IMAGE_FORMATS as FORMATS
from nstcli.jobs.inputs import IMAGE_EXTENSIONS, find_contents
from nstcli.jobs.shards import shard_of

# Output formats by name, as --format takes them: png, jpg, jpeg, webp, tif, tiff.
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

    @property
    def label(self) -> str:
        return f"{self.content} with style {self.style}"

    def fields(self) -> dict[str, str]:
        return {"input": str(self.content), "style": str(self.style), "output": str(self.output)}

    def masks(self):
        """The item's SpatialControl, or None without masks."""
        if self.content_mask is None and self.style_mask is None:
            return None
        from nstcli.stylize.masks import SpatialControl

        return SpatialControl([self.style_mask] if self.style_mask else (), content_mask=self.content_mask)

    @property
    def output(self) -> Path:
        return self.outdir / self.name



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

