"""Reading and writing clips: containers, frame rate, audio copy, folders of frames, errors."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from clips import audio_only_file, audio_packets, make_clip, pan_frames, write_clip
from helpers import VIDEO_FAST, make_image, video
from nstcli.video import formats, reader, writer
from nstcli.errors import ConfigError, ImageError


def _mean_abs(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())


def test_open_clip_reports_frames_rate_size_and_audio(tmp_path):
    """It reads the frame count, rate, size and audio codec of a file without decoding it."""
    clip = reader.open_clip(make_clip(tmp_path / "in.mp4", frames=6, rate=12, audio_seconds=0.5))
    assert (clip.frames, clip.rate, clip.size, clip.audio_codec, clip.folder) == (6, Fraction(12), (64, 48), "aac", False)
    assert clip.duration == pytest.approx(0.5)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".webm", ".gif"])
def test_round_trip_keeps_frame_count_rate_and_pixels(tmp_path, suffix):
    """It writes decoded frames back out with the same count, rate and (up to compression) pixels."""
    originals = pan_frames(tmp_path, frames=5)
    source = reader.open_clip(write_clip(tmp_path / "in.mkv", originals, rate=10))
    plan = writer.plan_video_output(tmp_path / f"out{suffix}", source)
    writer.write_video(plan, source, reader.read_frames(source))
    result = reader.open_clip(tmp_path / f"out{suffix}")
    assert (result.frames, result.rate, result.size) == (5, Fraction(10), (64, 48))
    back = list(reader.read_frames(result))
    assert len(back) == 5
    # GIF's fixed 256-colour palette is coarser than 4:2:0 video; both stay far below the 40+ levels
    # that separate one frame of the pan from the next.
    tolerance = 24 if suffix == ".gif" else 12
    assert all(_mean_abs(a, b) < tolerance for a, b in zip(originals, back))


def test_video_encoder_is_h264_where_available(tmp_path):
    """It encodes MP4 with H.264 when PyAV's FFmpeg has libx264."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4"))
    assert writer.plan_video_output(tmp_path / "out.mp4", source).encoder == "libx264"


def test_falls_back_to_mpeg4_part2_without_h264(tmp_path, monkeypatch):
    """It encodes MPEG-4 Part 2 at the same rate when no H.264 encoder exists."""
    monkeypatch.setitem(formats.ENCODERS, "mp4", ("no-such-h264-encoder", "mpeg4"))
    source = reader.open_clip(make_clip(tmp_path / "in.mp4", frames=4, rate=15))
    plan = writer.plan_video_output(tmp_path / "out.mp4", source)
    assert plan.encoder == "mpeg4"
    writer.write_video(plan, source, reader.read_frames(source))
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert (reader.open_clip(tmp_path / "out.mp4").frames, reader.open_clip(tmp_path / "out.mp4").rate) == (4, 15)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_audio_is_copied_packet_for_packet(tmp_path, suffix):
    """It copies the input's audio stream unchanged (the same packets, not re-encoded)."""
    source_path = make_clip(tmp_path / "in.mp4", frames=6, rate=12, audio_seconds=0.5)
    source = reader.open_clip(source_path)
    plan = writer.plan_video_output(tmp_path / f"out{suffix}", source)
    assert plan.copy_audio
    writer.write_video(plan, source, reader.read_frames(source))
    copied = audio_packets(tmp_path / f"out{suffix}")
    assert copied and copied == audio_packets(source_path)
    assert reader.open_clip(tmp_path / f"out{suffix}").audio_codec == "aac"


def test_no_audio_stream_when_input_has_none(tmp_path):
    """It writes a video-only file from a silent input."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4"))
    plan = writer.plan_video_output(tmp_path / "out.mp4", source)
    writer.write_video(plan, source, reader.read_frames(source))
    assert not plan.copy_audio and audio_packets(tmp_path / "out.mp4") == []


def test_audio_the_container_cannot_hold_is_a_usage_error(tmp_path):
    """It refuses, before writing anything, AAC audio into WebM (which admits only Opus/Vorbis)."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4", audio_seconds=0.4))
    with pytest.raises(ConfigError) as raised:
        writer.plan_video_output(tmp_path / "out.webm", source)
    assert str(raised.value) == (f"output {tmp_path / 'out.webm'} cannot hold the aac audio of {tmp_path / 'in.mp4'}; "
                                 "use .mkv (any audio) or .mp4")
    assert not (tmp_path / "out.webm").exists()


def test_gif_output_drops_audio(tmp_path):
    """It writes a GIF from a clip with audio, since GIF has no audio track."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4", audio_seconds=0.4))
    assert not writer.plan_video_output(tmp_path / "out.gif", source).copy_audio


def test_unknown_extension_is_a_usage_error(tmp_path):
    """It names the extension when it has no known container."""
    with pytest.raises(ConfigError) as raised:
        formats.container_for(tmp_path / "out.xyz")
    assert str(raised.value).startswith(f"output {tmp_path / 'out.xyz'} has extension '.xyz' with no known video container")


def test_folder_output_is_recognised():
    """It treats a name without extension or with a trailing slash as a folder of frames."""
    assert formats.is_folder_output("styled_frames/") and formats.is_folder_output("styled")
    assert not formats.is_folder_output("clip.mp4")


def test_odd_frame_sizes_are_padded_for_420_video(tmp_path):
    """It pads 63x47 frames to 64x48 for 4:2:0 H.264 instead of failing."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4", frames=3))
    plan = writer.plan_video_output(tmp_path / "out.mp4", source)
    writer.write_video(plan, source, reader.read_frames(source, size=(63, 47)))
    assert reader.open_clip(tmp_path / "out.mp4").size == (64, 48)


def test_failed_write_leaves_no_file(tmp_path):
    """It leaves neither the output nor a temporary file when frames stop with an error."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4", frames=4))
    plan = writer.plan_video_output(tmp_path / "out.mp4", source)

    def frames():
        yield from list(reader.read_frames(source))[:2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        writer.write_video(plan, source, frames())
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".mp4") == ["in.mp4"]


def test_frames_stream_one_at_a_time(tmp_path):
    """It decodes a frame only when asked, so a long clip never sits in memory."""
    source = reader.open_clip(make_clip(tmp_path / "in.mp4", frames=6))
    frames = reader.read_frames(source, size=(32, 24))
    first = next(frames)
    assert first.size == (32, 24) and first.mode == "RGB"
    frames.close()  # closing the generator closes the file


def test_folder_frames_in_natural_order(tmp_path):
    """It reads frame2 before frame10 and skips hidden and non-image files."""
    folder = tmp_path / "frames"
    for number, seed in ((10, 3), (2, 1), (1, 0)):
        make_image(folder / f"frame{number}.png", size=(40, 30), seed=seed)
    make_image(folder / ".hidden.png", size=(8, 8))
    (folder / "notes.txt").write_text("not a frame")
    clip = reader.open_clip(folder)
    assert (clip.frames, clip.size, clip.folder, clip.rate) == (3, (40, 30), True, formats.FOLDER_RATE)
    assert [path.name for path in reader.frame_files(folder)] == ["frame1.png", "frame2.png", "frame10.png"]
    expected = [Image.open(folder / f"frame{n}.png").convert("RGB") for n in (1, 2, 10)]
    assert [np.asarray(a).tolist() == np.asarray(b).tolist() for a, b in zip(reader.read_frames(clip), expected)] \
        == [True, True, True]


def test_natural_key_orders_numbers_by_value():
    """It orders names by the value of their digit runs."""
    names = ["f10.png", "f9.png", "F1.png", "f100.png", "g2.png"]
    assert sorted(names, key=reader.natural_key) == ["F1.png", "f9.png", "f10.png", "f100.png", "g2.png"]


def test_folder_mixing_sizes_names_the_frame(tmp_path):
    """It refuses a folder whose frames differ in size, naming the odd frame."""
    folder = tmp_path / "frames"
    make_image(folder / "a1.png", size=(40, 30))
    make_image(folder / "a2.png", size=(40, 30))
    make_image(folder / "a3.png", size=(30, 40))
    with pytest.raises(ImageError) as raised:
        reader.open_clip(folder)
    assert str(raised.value) == (f"frame {folder / 'a3.png'} is 30x40 but a1.png is 40x30; "
                                 "every frame of a folder must have the same size")


def test_empty_folder_is_refused(tmp_path):
    """It refuses a folder without image files."""
    (tmp_path / "frames").mkdir()
    with pytest.raises(ImageError, match="holds no frames"):
        reader.open_clip(tmp_path / "frames")


def test_not_a_video_is_refused(tmp_path):
    """It says a text file is not a video PyAV can read."""
    path = tmp_path / "notes.mp4"
    path.write_text("hello")
    with pytest.raises(ImageError) as raised:
        reader.open_clip(path)
    assert str(raised.value).startswith(f"video {path} is not a video PyAV can read")


def test_missing_input_is_refused(tmp_path):
    """It names a path that does not exist."""
    with pytest.raises(ImageError, match="does not exist"):
        reader.open_clip(tmp_path / "nothing.mp4")


def test_file_without_video_stream_is_refused(tmp_path):
    """It refuses an audio-only file, saying it has no video stream."""
    path = audio_only_file(tmp_path, "sound.m4a")
    with pytest.raises(ImageError) as raised:
        reader.open_clip(path)
    assert str(raised.value) == f"{path} has no video stream; give a video file or a folder of images"


def test_video_stream_without_frames_is_refused(tmp_path):
    """It refuses a file whose video stream holds no frames."""
    source = make_clip(tmp_path / "with-audio.mp4", audio_seconds=0.4)
    path = tmp_path / "empty.mkv"
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        stream = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    with pytest.raises(ImageError) as raised:
        reader.open_clip(path)
    assert str(raised.value) == f"video {path} has no frames; give a video with at least one frame"


def test_animated_gif_input(tmp_path):
    """It reads every frame of an animated GIF at its rate."""
    path = write_clip(tmp_path / "in.gif", pan_frames(tmp_path, frames=4), rate=10)
    clip = reader.open_clip(path)
    assert (clip.frames, clip.rate) == (4, 10)
    assert len(list(reader.read_frames(clip))) == 4


def test_truncated_clip_says_what_was_lost(runner, style, tmp_path):
    """It warns naming the frames declared and read when a clip is cut short, and writes what was read."""
    whole = make_clip(tmp_path / "whole.mp4", frames=8, faststart=True)
    with av.open(str(whole)) as container:
        positions = [packet.pos for packet in container.demux(container.streams.video[0]) if packet.size]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:positions[1] + 10])  # the first frame and a few bytes of the second
    result = video(runner, cut, style, "-o", tmp_path / "out", *VIDEO_FAST)
    assert result.exit_code == 0, result.output
    assert (f"Warning: video {cut} declares 8 frames but only 1 could be read (the file is cut short or damaged); "
            "the output has 1") in result.stderr.splitlines()
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == ["frame_000001.png"]


def test_rotated_phone_clip_comes_out_upright(runner, style, tmp_path):
    """It turns a clip stored landscape with a 90-degree display rotation upright, as EXIF is for stills."""
    stored = Image.new("RGB", (64, 48), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 32, 48))  # stored: red left half, blue right half
    # Turned 90 degrees counter-clockwise for display: the left edge ends at the bottom.
    path = write_clip(tmp_path / "phone.mp4", [stored, stored], rotation=90)
    assert reader.open_clip(path).size == (48, 64)
    result = video(runner, path, style, "-o", tmp_path / "out", *VIDEO_FAST, "--steps", "0", "--frame-steps", "0")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "frame_000001.png") as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (32, 24)  # portrait
    top, bottom = pixels[:10].mean(axis=(0, 1)), pixels[-10:].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60  # blue on top
    assert bottom[0] > 200 and bottom[2] < 60  # red at the bottom
