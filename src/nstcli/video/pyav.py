"""PyAV imported on use, and a container opened for reading with its failures as nstcli errors.

PyAV is an optional dependency (the `video` extra) that only `nst video` needs.
"""

from __future__ import annotations

from pathlib import Path

from nstcli.errors import ImageError


def av_module():
    # Imported on use: PyAV is an optional dependency (the `video` extra) that only `nst video` needs.
    from nstcli.extras import require

    return require("av", "video", "video", "PyAV")


def open_container(path: Path):
    av = av_module()
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise ImageError(f"video {path} is not a video PyAV can read ({ffmpeg_reason(exc)}); "
                         "give a video file or a folder of images") from None
    except OSError as exc:
        raise ImageError(f"video {path} cannot be read ({exc.strerror or exc})") from None


def ffmpeg_reason(exc: Exception) -> str:
    """An FFmpeg error's first line, for an error message."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return str(reason).strip().splitlines()[0][:200] if str(reason).strip() else exc.__class__.__name__
