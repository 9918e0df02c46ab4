"""Frames out into a video file, encoded as they arrive, with the input's audio copied.

The container comes from the extension; the video is encoded with H.264 where PyAV's FFmpeg has an
encoder for it (else MPEG-4 Part 2), at the input's frame rate, with the input's audio stream copied
packet for packet (never re-encoded). Memory does not grow with the clip's length. The file is
written through writes.py, under a temporary name renamed at the end, so no half-written output
survives a failure and a full disk is one line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image

from nstcli.errors import ConfigError, ImageError
from nstcli.writes import atomic_file
from nstcli.video.formats import ENCODERS, container_for
from nstcli.video.pyav import av_module, ffmpeg_reason, open_container
from nstcli.video.reader import Clip

def encoder_for(container: str) -> str:
    """The best video encoder PyAV's FFmpeg has for a container."""
    av = av_module()
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
    av = av_module()
    copy_audio = clip.audio_codec is not None and container != "gif"
    with av.open(io.BytesIO(), mode="w", format=container) as probe:
        try:
            probe.add_stream(encoder, rate=clip.rate)
        except ValueError as exc:
            raise ConfigError(f"output {path} cannot hold {encoder} video ({exc}); use .mp4 or .mkv") from None
        if copy_audio:
            with open_container(clip.path) as source:
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
        self.source = open_container(clip.path)
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


def write_video(plan: VideoOutput, clip: Clip, frames: Iterable[Image.Image], **how) -> Path:
    """Encode frames (all the same size) into plan.path at the clip's rate, copying its audio.

    Written to a temporary file beside the output and renamed once complete: a failure or Ctrl-C
    leaves the previous file (or none), never a truncated video. `how`: what a failed write suggests
    instead (writes.atomic_file's `elsewhere`).
    """
    av = av_module()
    path = plan.path
    count = 0
    try:
        # PyAV writes into writes.py's file object, so a full disk is the OSError behind PyAV's own
        # callback error, told as every other failed write is.
        with atomic_file(path, **how) as sink, av.open(sink, mode="w", format=plan.container) as output:
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
    except av.error.FFmpegError as exc:
        raise ImageError(f"cannot write {path} ({ffmpeg_reason(exc)})") from None
    return path
