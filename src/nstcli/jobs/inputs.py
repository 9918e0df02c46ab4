"""Finding input images: files named are taken whatever their extension; folders give their images.

Folders give their files with an image extension, sorted, hidden files and folders skipped;
`recursive` descends into subfolders and keeps each file's subfolder, so outputs can mirror it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from nstcli import paths
from nstcli.errors import ConfigError, ImageError

# What a folder contributes. Files named on the command line are taken whatever their extension.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


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
        path = paths.check_file(given, ImageError, {
            paths.LOOP: "input {path} is a symbolic link loop; point it at an image or a folder",
            paths.MISSING: "input {path} does not exist; check the path"})
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
