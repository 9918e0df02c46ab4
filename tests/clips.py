"""Tiny seeded clips for the video tests: a view panning across a picture, written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from helpers import make_image


def pan_frames(tmp_path: Path, frames: int = 5, size=(64, 48), step=(2, 1), seed=0) -> list[Image.Image]:
    """`frames` crops of one seeded picture, each `step` (dx, dy) pixels further right and down."""
    width, height = size
    scene = (width + frames * abs(step[0]) + 8, height + frames * abs(step[1]) + 8)
    shapes = np.asarray(Image.open(make_image(tmp_path / f"scene-{seed}.png", size=scene, seed=seed)).convert("RGB"))
    # Smooth noise over the shapes gives every patch some texture, as real footage has: flat
    # regions would leave the flow undetermined there (the aperture problem).
    rng = np.random.default_rng(seed)
    noise = Image.fromarray(rng.integers(0, 256, (scene[1] // 4, scene[0] // 4, 3), dtype=np.uint8))
    noise = np.asarray(noise.resize(scene, Image.Resampling.BICUBIC), dtype=np.float32)
    big = Image.fromarray((0.6 * shapes + 0.4 * noise).clip(0, 255).astype(np.uint8))
    return [big.crop((i * step[0], i * step[1], i * step[0] + width, i * step[1] + height)) for i in range(frames)]


def frame_folder(tmp_path: Path, count: int = 2) -> Path:
    """A folder `frames` of `count` numbered 48 x 32 px PNG frames of a panning view."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=count, size=(48, 32))):
        image.save(folder / f"f{index + 1}.png")
    return folder


def jump_frames(jump: int = 24, frames: int = 2) -> list[Image.Image]:
    """Frames 48 px high (64 wide for two, wider for more) of a striped square jumping `jump` px right
    per frame over a textured background: further than DIS follows at this size, so its flows agree
    on the background's motion there, and are wrong (the square is at rows 16..31, columns
    8 + i * jump onwards, 16 px wide)."""
    rng = np.random.default_rng(3)
    width = max(64, 32 + (frames - 1) * jump + 3) // 4 * 4
    background = rng.integers(0, 256, (12, width // 4, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    square = np.full((16, 16, 3), (20, 40, 230), np.uint8)
    square[::4] = (240, 240, 30)  # stripes, so it is no flat patch
    images = []
    for index in range(frames):
        frame = background.copy()
        left = 8 + index * jump
        frame[16:32, left:left + 16] = square
        images.append(Image.fromarray(frame))
    return images


def write_clip(path: Path, images: list[Image.Image], rate=12, audio_seconds: float | None = None,
               codec: str = "libx264", faststart: bool = False, rotation: int = 0) -> Path:
    """Encode images at `rate` fps; with `audio_seconds`, add that much of a 440 Hz tone in AAC. `faststart`
    puts an MP4's index (and so its declared frame count) before the frames; `rotation` is a display rotation
    in degrees counter-clockwise, as phones store a clip filmed upright."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else None) as container:
        fmt = "rgb8" if path.suffix == ".gif" else "yuv420p"
        video = container.add_stream("gif" if path.suffix == ".gif" else codec, rate=Fraction(rate))
        video.width, video.height = images[0].size
        video.pix_fmt = fmt
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if audio_seconds:
            audio = container.add_stream("aac", rate=22050)
            audio.layout = "stereo"
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            rate_hz = 22050
            t = np.arange(int(rate_hz * audio_seconds)) / rate_hz
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = np.stack([tone[start:start + 1024]] * 2)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                frame.sample_rate = rate_hz
                frame.pts = start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


def make_clip(path: Path, frames: int = 5, size=(64, 48), rate=12, audio_seconds=None, seed=0,
              faststart: bool = False) -> Path:
    """A panning clip of `frames` frames written to `path` (container from the extension)."""
    return write_clip(path, pan_frames(path.parent, frames, size, seed=seed), rate=rate,
                      audio_seconds=audio_seconds, faststart=faststart)


def audio_packets(path: Path) -> list[bytes]:
    """The raw bytes of every audio packet of a file, to compare a copy with its source."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(packet) for packet in container.demux(container.streams.audio[0]) if packet.size]


def audio_only_file(tmp_path: Path, name: str) -> Path:
    """A file holding only the audio stream of a generated clip (no video stream to stylise)."""
    source = make_clip(tmp_path / "with-audio.mp4", audio_seconds=0.4)
    path = tmp_path / name
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return path
