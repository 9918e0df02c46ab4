"""What video inputs and outputs are, before PyAV opens anything: containers and encoders per
extension, the still-image formats of a folder of frames, frame rates as the fractions containers
hold, an output folder's frame names and the frame size a run works at.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

from nstcli.image.io import by_extension, fit_longest

# Container (FFmpeg muxer name) per output extension.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".gif": "gif",
}
# Video encoders per container, best first; the first one PyAV's FFmpeg has is used. WebM admits only
# VP8/VP9/AV1 and GIF only its own codec, so they have no H.264 fallback chain.
ENCODERS = {
    "mp4": ("libx264", "h264", "mpeg4"),
    "mov": ("libx264", "h264", "mpeg4"),
    "matroska": ("libx264", "h264", "mpeg4"),
    "avi": ("libx264", "h264", "mpeg4"),
    "webm": ("libvpx-vp9", "libvpx"),
    "gif": ("gif",),
}
# Folder frames: the still-image formats image/io.py reads. GIF is left out: in a folder of frames an
# animated GIF would silently stand for its first frame only.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
# A folder of images has no frame rate of its own; this is what the output video gets unless told.
FOLDER_RATE = Fraction(25)


# Frame rates are written as rationals; containers keep them in 32-bit fields, so a typed rate such as
# 29.97 (whose binary float is a fraction with a 52-bit denominator) is approximated first.
MIN_RATE, MAX_RATE = Fraction(1, 1000), 1000
RATE_DENOMINATOR = 1001  # NTSC's rates are n * 1000/1001; 1001 keeps them exact


def frame_rate(value: Fraction | float | int | str) -> Fraction:
    """A frame rate as the short fraction a container can hold: 29.97 -> 30000/1001, 0.1 -> 1/10.

    ValueError for what is not a rate (nan, inf, outside MIN_RATE..MAX_RATE frames a second).
    """
    if isinstance(value, str):
        value = float(value.strip())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(value)
    exact = Fraction(value)
    if not MIN_RATE <= exact <= MAX_RATE:
        raise ValueError(value)
    # A camera's "29.97" or "23.976" is NTSC's 30000/1001 or 24000/1001, rounded for the spec sheet:
    # take the NTSC rate when the typed one is within that rounding of it.
    ntsc = Fraction(round(exact * RATE_DENOMINATOR / 1000) * 1000, RATE_DENOMINATOR)
    if ntsc.denominator != 1 and ntsc > 0 and abs(ntsc - exact) < Fraction(1, 1000):
        return ntsc
    return exact.limit_denominator(RATE_DENOMINATOR)


def is_folder_output(path: str | os.PathLike) -> bool:
    """An output without an extension (or ending in a slash, or an existing folder) is a folder of PNGs."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir() or not Path(text).suffix


def container_for(path: str | os.PathLike) -> str:
    """The FFmpeg container for an output file's extension; an unknown one is a usage error (exit 2)."""
    return by_extension(path, CONTAINERS, "output {path} has extension '{suffix}' with no known video container; "
                        "use one of {known}, or a folder name for PNG frames")


def frame_name(index: int) -> str:
    """File name of the frame at 0-based `index` in an output or work folder (numbered from 1)."""
    return f"frame_{index + 1:06d}.png"


def frame_size(size: tuple[int, int], longest: int, even: bool) -> tuple[int, int]:
    """(width, height) with the longest side `longest`; both even for 4:2:0 video (rounded down)."""
    width, height = fit_longest(size, longest)
    if even:
        width, height = max(2, width - width % 2), max(2, height - height % 2)
    return width, height
