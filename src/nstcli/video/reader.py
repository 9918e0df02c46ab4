"""Frames in from a video file or a folder of images, one at a time.

- Input: any container PyAV's FFmpeg decodes (MP4, MOV, MKV, WebM, AVI, animated GIF, ...) or a
  folder of images taken in natural name order (frame2 before frame10).
- `open_clip` checks an input and says what it holds (frames, rate, size, audio, rotation) without
  decoding; `read_frames` is a generator that decodes the next frame when asked for it, so a clip is
  never held in memory.
- Every failure is an nstcli error with one line naming the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from nstcli.errors import ConfigError, ImageError
from nstcli.image.io import MAX_INPUT_PIXELS, open_image
from nstcli.video.formats import FOLDER_RATE, FRAME_SUFFIXES, MAX_RATE, MIN_RATE, frame_rate
from nstcli.video.pyav import av_module, ffmpeg_reason, open_container

# EXIF orientations that swap width and height (90 and 270 degree rotations, with or without a flip).
_TRANSPOSED = (5, 6, 7, 8)


@dataclass(frozen=True)
class Clip:
    """What is known about an input before any frame is decoded."""

    path: Path
    frames: int
    rate: Fraction  # frames per second
    size: tuple[int, int]  # width, height of the frames as stored
    folder: bool  # a folder of images rather than a video file
    audio_codec: str | None = None  # the first audio stream's codec, None if there is none
    start: float = 0.0  # seconds the first video frame is shown after the container's start
    # Degrees counter-clockwise the stream asks players to turn its frames (a phone's display matrix);
    # `size` is the frames' size once turned, as they are read.
    rotation: int = 0

    @property
    def duration(self) -> float:
        return float(self.frames / self.rate)


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: frame2 before frame10, then case-insensitively."""
    return [(0, int(part), part) if part.isdigit() else (1, part.lower(), part)
            for part in re.split(r"(\d+)", name) if part]


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder in natural name order (hidden files and other files skipped)."""
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
    except PermissionError:
        raise ImageError(f"folder {folder} cannot be read (permission denied)") from None
    files = [entry for entry in entries
             if entry.suffix.lower() in FRAME_SUFFIXES and not entry.name.startswith(".") and entry.is_file()]
    return sorted(files, key=lambda entry: natural_key(entry.name))


def _stored_size(path: Path) -> tuple[int, int]:
    """A frame's size as it will be read (EXIF rotation applied), from its header alone."""
    if path.stat().st_size == 0:
        raise ImageError(f"frame {path} is empty (0 bytes); replace or remove it")
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except UnidentifiedImageError:
        raise ImageError(f"frame {path} is not an image Pillow can read; replace or remove it") from None
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise ImageError(f"frame {path} cannot be read ({reason}); replace or remove it") from None
    if width * height > MAX_INPUT_PIXELS:
        raise ImageError(f"frame {path} declares {width * height / 1e6:.0f} MP, more than the "
                         f"{MAX_INPUT_PIXELS // 1_000_000} MP limit; shrink the frames first")
    return (height, width) if orientation in _TRANSPOSED else (width, height)


def _open_folder(folder: Path, rate: Fraction) -> Clip:
    files = frame_files(folder)
    if not files:
        raise ImageError(f"folder {folder} holds no frames (no {', '.join(FRAME_SUFFIXES)} files); "
                         "give a folder of images or a video file")
    # Every header is read up front: a frame of another size found an hour into a run would waste it.
    size = _stored_size(files[0])
    for path in files[1:]:
        other = _stored_size(path)
        if other != size:
            raise ImageError(f"frame {path} is {other[0]}x{other[1]} but {files[0].name} is "
                             f"{size[0]}x{size[1]}; every frame of a folder must have the same size")
    return Clip(path=folder, frames=len(files), rate=rate, size=size, folder=True)


def _frame_rate(stream, frames: int) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    if stream.duration and stream.time_base and frames:
        return Fraction(frames) / (stream.duration * stream.time_base)
    return FOLDER_RATE


def _count_frames(container, stream) -> int:
    """Frames in the stream: the container's index where it has one, else by reading packets (not decoding)."""
    if stream.frames:
        return stream.frames
    # Called on a freshly opened container, so demuxing starts at the first packet without a seek
    # (seeking fails in files without an index, the very ones that need counting).
    return sum(1 for packet in container.demux(stream) if packet.size)


def _open_video(path: Path) -> Clip:
    av = av_module()
    if not path.is_file():
        raise ImageError(f"video {path} is not a regular file; give a video file or a folder of images")
    if path.stat().st_size == 0:
        raise ImageError(f"video {path} is empty (0 bytes); replace it with a real video")
    with open_container(path) as container:
        if not container.streams.video:
            raise ImageError(f"{path} has no video stream; give a video file or a folder of images")
        stream = container.streams.video[0]
        try:
            frames = _count_frames(container, stream)
        except av.error.FFmpegError as exc:
            raise ImageError(f"video {path} is damaged ({ffmpeg_reason(exc)}); re-export or replace it") from None
        if frames == 0:
            raise ImageError(f"video {path} has no frames; give a video with at least one frame")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise ImageError(f"video {path} does not say its frame size; re-export it")
        if width * height > MAX_INPUT_PIXELS:
            raise ImageError(f"video {path} has {width * height / 1e6:.0f} MP frames, more than the "
                             f"{MAX_INPUT_PIXELS // 1_000_000} MP limit; shrink it first")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        rate = _frame_rate(stream, frames)
    rotation = _display_rotation(path)
    if rotation in (90, 270):
        width, height = height, width
    return Clip(path=path, frames=frames, rate=rate, size=(width, height), folder=False, audio_codec=audio,
                start=max(0.0, start), rotation=rotation)


def _display_rotation(path: Path) -> int:
    """The quarter turn (0, 90, 180 or 270 degrees counter-clockwise) a video's display matrix asks for.

    Phones store portrait clips as landscape frames with such a matrix, as they store photos with an
    EXIF orientation; players turn them, and so must we. PyAV exposes the matrix on decoded frames,
    so this decodes the first frame (of a second opening: counting frames has moved the first one
    past it). Rotations that are not quarter turns are left alone.
    """
    av = av_module()
    with open_container(path) as container:
        try:
            for frame in container.decode(container.streams.video[0]):
                turn = round(getattr(frame, "rotation", 0) or 0) % 360
                return turn if turn in (90, 180, 270) else 0
        except av.error.FFmpegError:
            pass  # damage is reported, with the frames it costs, when the frames are read
    return 0


# Image.rotate's direction (counter-clockwise), as exact transpositions.
_TURNS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def _upright(image: Image.Image, rotation: int) -> Image.Image:
    return image.transpose(_TURNS[rotation]) if rotation in _TURNS else image


def open_clip(path: str | os.PathLike, folder_rate: Fraction | float = FOLDER_RATE) -> Clip:
    """Check an input (a video file or a folder of frames) and say what it holds, decoding nothing."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"video {path} does not exist; check the path")
    if path.is_dir():
        try:
            rate = frame_rate(folder_rate)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"frame rate {folder_rate!r} is not frames per second from {float(MIN_RATE):g} to "
                              f"{MAX_RATE}; give e.g. 25 or 29.97") from None
        return _open_folder(path, rate)
    return _open_video(path)


def _fit(image: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    if image.mode != "RGB":
        # Transparent GIF frames are composited onto white, as image/io.py does for still images.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if size is not None and image.size != tuple(size):
        image = image.resize(tuple(size), Image.Resampling.LANCZOS)
    return image


def read_frames(clip: Clip, size: tuple[int, int] | None = None) -> Iterator[Image.Image]:
    """Yield the clip's frames in order as RGB images, resized to `size` (width, height) if given.

    A generator: each frame is decoded when the caller asks for it, and the file is closed when the
    caller stops, so a clip of any length needs the memory of one frame.
    """
    if clip.folder:
        files = frame_files(clip.path)
        for path in files:
            image = open_image(path)
            if image.size != clip.size:
                raise ImageError(f"frame {path} is {image.size[0]}x{image.size[1]} but the first frame is "
                                 f"{clip.size[0]}x{clip.size[1]}; every frame of a folder must have the same size")
            yield _fit(image, size)
        return
    av = av_module()
    with open_container(clip.path) as container:
        stream = container.streams.video[0]
        # One decoding thread (FFmpeg's default): decoding is a small part of a frame's time, and with
        # frame threads a damaged packet takes the frames still held in the other threads with it.
        # Packet by packet, so that a file cut short in the middle of a packet still gives the frames
        # before the cut: the decoder holds some of them back (reordering) until it is flushed, and a
        # failed packet would otherwise take them with it. The caller compares what was read with
        # clip.frames and says what was lost.
        read, failure = 0, None
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets, None)
                if packet is None:
                    break
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                failure = exc
                break
            for frame in decoded:
                read += 1
                yield _fit(_upright(frame.to_image(), clip.rotation), size)
        if failure is not None:
            try:
                held = stream.codec_context.decode(None)
            except av.error.FFmpegError:
                held = []
            for frame in held:
                read += 1
                yield _fit(_upright(frame.to_image(), clip.rotation), size)
            if not read:
                raise ImageError(f"video {clip.path} is damaged ({ffmpeg_reason(failure)}); "
                                 "re-export or replace it")

