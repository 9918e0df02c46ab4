"""Where the page's images come from: uploads (checked, then written to disk) or the bundled examples.

api.stylize reads image files, so an upload is written into a folder the page owns and checked with
the same reader the run will use. A bad upload is found as soon as it arrives, and its message names
the file the person chose, not the temporary path it was written to.
"""

from __future__ import annotations

import re
from pathlib import Path

from nstcli import api

EXAMPLES = Path(__file__).with_name("examples")
EXAMPLE_CONTENT = EXAMPLES / "content.jpg"
EXAMPLE_STYLE = EXAMPLES / "style.jpg"

# What the uploaders offer; Pillow reads more, but these are the formats people have photos in.
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")


def _safe_suffix(name: str) -> str:
    # Keep the extension (it helps Pillow and a person reading the folder) but nothing else from a
    # name a browser sent: no separators, no "..".
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


def accept_upload(name: str, data: bytes, folder: Path, stem: str, max_bytes: int) -> Path:
    """Write an uploaded image to folder/STEM.EXT and check it reads, or raise ImageError naming `name`."""
    if len(data) > max_bytes:
        raise api.ImageError(f"upload '{name}' is {len(data) / 2**20:.1f} MB, more than the "
                         f"{max_bytes / 2**20:.0f} MB limit; shrink it first")
    path = Path(folder) / f"{stem}{_safe_suffix(name)}"
    try:
        api.write_file(path, data, elsewhere=None)
    except api.WriteError as exc:  # the page shows image problems beside the uploader
        raise api.ImageError(as_upload(str(exc), {path: name})) from None
    try:
        api.open_image(path)
    except api.ImageError as exc:
        path.unlink()
        raise api.ImageError(as_upload(str(exc), {path: name})) from None
    return path


def as_upload(message: str, names: dict[Path, str]) -> str:
    """Name uploads in a library message as the person knows them, not by their temporary paths."""
    # The library names an input file as "image PATH ..." (image/io.py's open_image, api.stylize).
    for path, name in names.items():
        message = message.replace(f"image {path}", f"upload '{name}'")
    return message


def thumbnail(path: Path, side: int = 200):
    """A small RGB copy of an image file for the page (read like the run reads it: EXIF turned, RGB)."""
    image = api.open_image(path)
    image.thumbnail((side, side))
    return image
