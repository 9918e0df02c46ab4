"""Frames in and out of video files and folders of images, one frame at a time.

- Input: any container PyAV's FFmpeg decodes (MP4, MOV, MKV, WebM, AVI, animated GIF, ...) or a
  folder of images taken in natural name order (frame2 before frame10).
- Output: a video file whose container comes from the extension, encoded with H.264 where PyAV's
  FFmpeg has an encoder for it (else MPEG-4 Part 2), at the input's frame rate, with the input's audio
  stream copied packet for packet (never re-encoded); or numbered PNGs in a folder.
- Streaming: a clip is never held in memory. Readers are generators that decode the next frame when
  asked for it, and the writer encodes each frame as it arrives, so memory does not grow with length.
- Every failure is an nstcli error with one line naming the file, and a video file is written under
  a temporary name and renamed at the end, so no half-written output survives a failure.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from nstcli.errors import ConfigError, ImageError
from nstcli.outputs import mode_for
from nstcli.image.io import MAX_INPUT_PIXELS, by_extension, open_image

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
# Folder frames: the still-image formats images.py reads. GIF is left out: in a folder of frames an
# animated GIF would silently stand for its first frame only.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
# A folder of images has no frame rate of its own; this is what the output video gets unless told.
FOLDER_RATE = Fraction(25)
# EXIF orientations that swap width and height (90 and 270 degree rotations, with or without a flip).
_TRANSPOSED = (5, 6, 7, 8)


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


def _av():
    # Imported on use: PyAV is an optional dependency (the `video` extra) that only `nst video` needs.
    from nstcli.extras import require

    return require("av", "video", "video", "PyAV")


def _open_container(path: Path):
    av = _av()
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise ImageError(f"video {path} is not a video PyAV can read ({_ffmpeg_reason(exc)}); "
                         "give a video file or a folder of images") from None
    except OSError as exc:
        raise ImageError(f"video {path} cannot be read ({exc.strerror or exc})") from None


def _ffmpeg_reason(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return str(reason).strip().splitlines()[0][:200] if str(reason).strip() else exc.__class__.__name__


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
    av = _av()
    if not path.is_file():
        raise ImageError(f"video {path} is not a regular file; give a video file or a folder of images")
    if path.stat().st_size == 0:
        raise ImageError(f"video {path} is empty (0 bytes); replace it with a real video")
    with _open_container(path) as container:
        if not container.streams.video:
            raise ImageError(f"{path} has no video stream; give a video file or a folder of images")
        stream = container.streams.video[0]
        try:
            frames = _count_frames(container, stream)
        except av.error.FFmpegError as exc:
            raise ImageError(f"video {path} is damaged ({_ffmpeg_reason(exc)}); re-export or replace it") from None
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
    av = _av()
    with _open_container(path) as container:
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
        # Transparent GIF frames are composited onto white, as images.py does for still images.
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
    av = _av()
    with _open_container(clip.path) as container:
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
                raise ImageError(f"video {clip.path} is damaged ({_ffmpeg_reason(failure)}); "
                                 "re-export or replace it")


# --- output -----------------------------------------------------------------------------------


def is_folder_output(path: str | os.PathLike) -> bool:
    """An output without an extension (or ending in a slash, or an existing folder) is a folder of PNGs."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir() or not Path(text).suffix


def container_for(path: str | os.PathLike) -> str:
    """The FFmpeg container for an output file's extension; an unknown one is a usage error (exit 2)."""
    return by_extension(path, CONTAINERS, "output {path} has extension '{suffix}' with no known video container; "
                        "use one of {known}, or a folder name for PNG frames")


def encoder_for(container: str) -> str:
    """The best video encoder PyAV's FFmpeg has for a container."""
    av = _av()
    for name in ENCODERS[container]:
        try:
            return av.codec.Codec(name, "w").name
        except Exception:  # noqa: BLE001 - PyAV raises different errors for a missing encoder by version
            continue
    raise ConfigError(f"PyAV's FFmpeg has no encoder for {container} ({' or '.join(ENCODERS[container])}); "
                      "choose another extension such as .mp4 or .mkv")


@dataclass(frozen=True)
class VideoOutput:
    """How an output video will be written, checked before any frame is computed."""

    path: Path
    container: str
    encoder: str
    copy_audio: bool  # False when the input has none, or the container cannot hold any (GIF)


def plan_video_output(path: str | os.PathLike, clip: Clip) -> VideoOutput:
    """Check that `path` can hold the clip (container, encoder, the input's audio) without writing it.

    The streams are added to a container in memory, so an impossible combination (AAC audio in WebM)
    is a usage error before the run, not a failure at its end.
    """
    path = Path(path)
    container = container_for(path)
    encoder = encoder_for(container)
    av = _av()
    copy_audio = clip.audio_codec is not None and container != "gif"
    with av.open(io.BytesIO(), mode="w", format=container) as probe:
        try:
            probe.add_stream(encoder, rate=clip.rate)
        except ValueError as exc:
            raise ConfigError(f"output {path} cannot hold {encoder} video ({exc}); use .mp4 or .mkv") from None
        if copy_audio:
            with _open_container(clip.path) as source:
                try:
                    probe.add_stream_from_template(source.streams.audio[0])
                except ValueError:
                    raise ConfigError(f"output {path} cannot hold the {clip.audio_codec} audio of {clip.path}; "
                                      "use .mkv (any audio) or .mp4") from None
    return VideoOutput(path=path, container=container, encoder=encoder, copy_audio=copy_audio)


def _even(value: int) -> int:
    return value + (value % 2)


def _configure(stream, encoder: str, size: tuple[int, int], rate: Fraction) -> None:
    width, height = size
    if encoder == "gif":
        # FFmpeg's GIF encoder takes palette frames; rgb8 is a fixed 3-3-2 palette that needs no
        # second pass over the clip (an adaptive palette would need every frame first).
        stream.pix_fmt = "rgb8"
    else:
        # 4:2:0 is what every player decodes; it stores colour at half resolution, so the frame is
        # padded to even sides (see _padded) rather than refused.
        stream.pix_fmt = "yuv420p"
        width, height = _even(width), _even(height)
    stream.width, stream.height = width, height
    if encoder in ("libx264", "h264"):
        # Constant quality 18 is visually lossless for x264: style textures are all fine detail.
        stream.options = {"crf": "18", "preset": "medium"}
    elif encoder == "libvpx-vp9":
        stream.options = {"crf": "30", "b": "0", "row-mt": "1"}
    else:
        # MPEG-4 Part 2 and VP8 are rate-controlled; FFmpeg's default 200 kb/s smears texture, so give
        # them about 0.4 bits per pixel.
        stream.bit_rate = max(1_000_000, int(width * height * float(rate) * 0.4))


def _padded(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Grow an odd-sized frame by repeating its last row/column (cropping would lose a row of the result)."""
    if image.size == size:
        return image
    canvas = Image.new("RGB", size)
    canvas.paste(image, (0, 0))
    width, height = image.size
    if size[0] > width:
        canvas.paste(image.crop((width - 1, 0, width, height)), (width, 0))
    if size[1] > height:
        canvas.paste(canvas.crop((0, height - 1, size[0], height)), (0, height))
    return canvas


class _AudioCopier:
    """Feeds the input's audio packets to the output, interleaved with the video by time.

    Muxing all audio after all video would make FFmpeg's interleaver buffer every video packet in
    memory; copying up to the time of each video packet keeps both streams flowing.
    """

    def __init__(self, clip: Clip, output):
        self.source = _open_container(clip.path)
        template = self.source.streams.audio[0]
        self.stream = output.add_stream_from_template(template)
        self.packets = (packet for packet in self.source.demux(template) if packet.dts is not None)
        self.pending = None
        self.output = output

    def copy_until(self, seconds: float | None) -> None:
        while True:
            if self.pending is None:
                self.pending = next(self.packets, None)
                if self.pending is None:
                    return
            packet = self.pending
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                return
            packet.stream = self.stream
            self.output.mux(packet)
            self.pending = None

    def close(self) -> None:
        self.source.close()


def write_video(plan: VideoOutput, clip: Clip, frames: Iterable[Image.Image]) -> Path:
    """Encode frames (all the same size) into plan.path at the clip's rate, copying its audio.

    Written to a temporary file beside the output and renamed once complete: a failure or Ctrl-C
    leaves the previous file (or none), never a truncated video.
    """
    av = _av()
    path = plan.path
    folder = path.parent if str(path.parent) else Path(".")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    os.close(handle)
    count = 0
    try:
        with av.open(tmp, mode="w", format=plan.container) as output:
            stream = output.add_stream(plan.encoder, rate=clip.rate)
            audio = _AudioCopier(clip, output) if plan.copy_audio else None
            # Frames are numbered in 1/rate steps from the input's first-frame offset, which keeps
            # the input's rate, its duration, and the video's place against the copied audio.
            offset = round(clip.start * clip.rate)
            size = None
            try:
                for image in frames:
                    if size is None:
                        _configure(stream, plan.encoder, image.size, clip.rate)
                        size = (stream.width, stream.height)
                    frame = av.VideoFrame.from_image(_padded(image.convert("RGB"), size))
                    frame.pts = offset + count
                    count += 1
                    for packet in stream.encode(frame):
                        if audio is not None:
                            audio.copy_until(float(packet.pts * packet.time_base) if packet.pts is not None else None)
                        output.mux(packet)
                if size is None:
                    raise ImageError(f"no frames to write to {path}")
                for packet in stream.encode():
                    output.mux(packet)
                if audio is not None:
                    audio.copy_until(None)
            finally:
                if audio is not None:
                    audio.close()
        os.chmod(tmp, mode_for(path))  # mkstemp's 0600 would keep the video from whoever it is for
        os.replace(tmp, path)
    except av.error.FFmpegError as exc:
        raise ImageError(f"cannot write {path} ({_ffmpeg_reason(exc)})") from None
    except OSError as exc:
        raise ImageError(f"cannot write {path} ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def frame_name(index: int) -> str:
    """File name of the frame at 0-based `index` in an output or work folder (numbered from 1)."""
    return f"frame_{index + 1:06d}.png"


def frame_size(size: tuple[int, int], longest: int, even: bool) -> tuple[int, int]:
    """(width, height) with the longest side `longest`; both even for 4:2:0 video (rounded down)."""
    width, height = size
    scale = longest / max(width, height)
    width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if even:
        width, height = max(2, width - width % 2), max(2, height - height % 2)
    return width, height
