"""`nst video`: a clip in, a stylised clip out, resumable, and every error with its exit code."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from PIL import Image

from clips import audio_only_file, audio_packets, jump_frames, make_clip, pan_frames, write_clip
from helpers import error_line, make_image, video
from nstcli.stylize import single
from nstcli import api
from nstcli.video.formats import frame_name
from nstcli.video.reader import open_clip
from nstcli.cli.main import nst

# A few steps per frame: these tests check plumbing, not quality.
FAST = ["--weights", "random", "--size", "32", "--steps", "3", "--quiet"]
VIDEO_FAST = [*FAST, "--frame-steps", "2"]


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_video_in_video_out_keeps_frames_rate_and_audio(runner, tmp_path, style):
    """It writes an MP4 with the input's frame count, rate and audio packets, and removes its work folder."""
    source = make_clip(tmp_path / "clip.mp4", frames=4, rate=12, audio_seconds=0.4)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "out.mp4")
    clip = open_clip(tmp_path / "out.mp4")
    assert (clip.frames, clip.rate, clip.size) == (4, 12, (32, 24))
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(source)
    assert not (tmp_path / "out_frames").exists()


def test_folder_in_folder_out(runner, tmp_path, style):
    """It reads frames in natural order from a folder and writes numbered PNGs into a folder."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=3, size=(64, 42))):
        image.save(frames / f"f{index + 1}.png")
    result = video(runner, frames, style, "-o", f"{tmp_path / 'styled'}/", *VIDEO_FAST)
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (tmp_path / "styled").glob("*.png"))
    assert written == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert Image.open(tmp_path / "styled" / "frame_000001.png").size == (32, 21)


def test_json_prints_one_object(runner, tmp_path, style):
    """It prints output, frames, seconds and the mean temporal error as one JSON object."""
    source = make_clip(tmp_path / "clip.mkv", frames=3)
    result = video(runner, source, style, "-o", tmp_path / "out.mkv", *VIDEO_FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["output"] == str(tmp_path / "out.mkv") and summary["frames"] == 3
    assert summary["seconds"] > 0 and summary["temporal_error"] >= 0
    assert set(summary) >= {"output", "frames", "seconds", "temporal_error"}


def test_progress_bar_counts_frames(tmp_path, style):
    """It draws one bar over the frames on stderr, not on stdout."""
    from click.testing import CliRunner

    source = make_clip(tmp_path / "clip.mp4", frames=3)
    flags = [flag for flag in VIDEO_FAST if flag != "--quiet"]
    result = CliRunner().invoke(nst, ["video", str(source), str(style), "-o", str(tmp_path / "out.mp4"), *flags])
    assert result.exit_code == 0, result.output
    assert "3/3" in result.stderr and "video" in result.stderr
    assert result.stdout.strip() == str(tmp_path / "out.mp4")


def test_static_clip_stays_still(runner, tmp_path, style):
    """It carries a still clip's first stylised frame unchanged to the next (temporal error zero)."""
    still = pan_frames(tmp_path, frames=1)[0]
    frames = tmp_path / "still"
    frames.mkdir()
    for index in range(3):
        still.save(frames / f"{index}.png")
    result = video(runner, frames, style, "-o", tmp_path / "styled", *FAST, "--frame-steps", "0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["temporal_error"] == pytest.approx(0.0, abs=1e-6)
    first = pixels(tmp_path / "styled" / "frame_000001.png")
    for name in ("frame_000002.png", "frame_000003.png"):
        assert np.abs(pixels(tmp_path / "styled" / name) - first).max() <= 1


def _interrupt_at_call(monkeypatch, number):
    """Make the `number`-th frame's optimisation see Ctrl-C, as the engine would."""
    calls = {"n": 0}
    real = api.stylize

    def stylize(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(single, "stylize", stylize)
    return real


def test_resume_after_interruption_gives_the_same_frames(runner, tmp_path, style, monkeypatch):
    """It exits 130 keeping finished frames, says how to resume, and the re-run matches an uninterrupted run."""
    source = make_clip(tmp_path / "clip.mp4", frames=5)
    flags = [*FAST, "--frame-steps", "3"]
    assert video(runner, source, style, "-o", tmp_path / "whole", *flags).exit_code == 0

    real = _interrupt_at_call(monkeypatch, 3)
    interrupted = video(runner, source, style, "-o", tmp_path / "parts", *flags)
    assert interrupted.exit_code == 130
    assert error_line(interrupted) == (f"Error: interrupted at frame 3 of 5; 2 of 5 frames are kept in "
                                       f"{tmp_path / 'parts'}; run the same command again to continue")
    assert sorted(path.name for path in (tmp_path / "parts").glob("*.png")) == ["frame_000001.png", "frame_000002.png"]

    monkeypatch.setattr(single, "stylize", real)
    resumed = video(runner, source, style, "-o", tmp_path / "parts", *flags, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["resumed_from"] == 2
    for index in range(5):
        name = frame_name(index)
        assert np.array_equal(pixels(tmp_path / "parts" / name), pixels(tmp_path / "whole" / name)), name


def test_interrupted_video_output_is_not_written(runner, tmp_path, style, monkeypatch):
    """It leaves no output video after Ctrl-C, only the finished frames in OUT_frames/, and then finishes it."""
    source = make_clip(tmp_path / "clip.mp4", frames=3)
    real = _interrupt_at_call(monkeypatch, 2)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 130
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(path.name for path in (tmp_path / "out_frames").glob("*.png")) == ["frame_000001.png"]
    monkeypatch.setattr(single, "stylize", real)
    assert video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST).exit_code == 0
    assert open_clip(tmp_path / "out.mp4").frames == 3


def test_work_folder_of_another_run_is_not_mixed_in(runner, tmp_path, style, monkeypatch):
    """It refuses to continue frames made with other settings (exit 2) instead of mixing them."""
    source = make_clip(tmp_path / "clip.mp4", frames=3)
    _interrupt_at_call(monkeypatch, 2)
    assert video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST).exit_code == 130
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--style-weight", "5")
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {tmp_path / 'out_frames'} holds frames of another run (different config); "
                                  "delete it, or re-run with the same settings to continue it")


# --- errors ------------------------------------------------------------------------------------


def test_not_a_video(runner, tmp_path, style):
    """It exits 1 naming a file PyAV cannot read."""
    path = tmp_path / "clip.mp4"
    path.write_text("not a video")
    result = video(runner, path, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: video {path} is not a video PyAV can read")
    assert not (tmp_path / "out.mp4").exists()


def test_no_video_stream(runner, tmp_path, style):
    """It exits 1 for an audio-only file."""
    path = audio_only_file(tmp_path, "sound.m4a")
    result = video(runner, path, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {path} has no video stream; give a video file or a folder of images"


def test_zero_frames(runner, tmp_path, style):
    """It exits 1 for an empty folder of frames."""
    (tmp_path / "frames").mkdir()
    result = video(runner, tmp_path / "frames", style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: folder {tmp_path / 'frames'} holds no frames")


def test_folder_mixing_sizes(runner, tmp_path, style):
    """It exits 1 naming the frame whose size differs, before stylising anything."""
    frames = tmp_path / "frames"
    make_image(frames / "1.png", size=(48, 32))
    make_image(frames / "2.png", size=(48, 32))
    make_image(frames / "10.png", size=(40, 32))
    result = video(runner, frames, style, "-o", tmp_path / "styled", *VIDEO_FAST)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: frame {frames / '10.png'} is 40x32 but 1.png is 48x32; "
                                  "every frame of a folder must have the same size")
    assert not (tmp_path / "styled").exists()


def test_frames_too_small_for_the_layers(runner, tmp_path, style):
    """It exits 1 when the frames' short side would vanish before the deepest layer."""
    source = write_clip(tmp_path / "thin.mp4", [Image.new("RGB", (64, 8), (200, 100, 50))] * 2)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: frames of {source} would be 32x4 px at --size 32; the layers used need "
                                  "at least 16 px on the short side: use --size 128 or more")


def test_unknown_output_extension(runner, tmp_path, style):
    """It exits 2 for an output extension with no known container."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    result = video(runner, source, style, "-o", tmp_path / "out.xyz", *VIDEO_FAST)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: output {tmp_path / 'out.xyz'} has extension '.xyz' with no "
                                         "known video container")


def test_folder_output_that_is_a_file(runner, tmp_path, style):
    """It exits 2 when the folder named for PNG frames is an existing file."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "styled").write_text("a file")
    result = video(runner, source, style, "-o", f"{tmp_path / 'styled'}/", *VIDEO_FAST)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: output {tmp_path / 'styled'} is a file, not a folder")
    assert (tmp_path / "styled").read_text() == "a file"


def test_output_that_is_the_input(runner, tmp_path, style):
    """It exits 2 rather than overwrite the clip it reads."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    before = source.read_bytes()
    result = video(runner, source, style, "-o", source, *VIDEO_FAST)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: output {source} is also an input; writing it would replace that input: "
                                  "choose another -o")
    assert source.read_bytes() == before


def test_work_folder_that_is_the_input(runner, tmp_path, style):
    """It exits 2 when OUT_frames/ beside the output would be the folder of frames it reads."""
    frames = tmp_path / "clip_frames"
    frames.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=2)):
        image.save(frames / f"{index}.png")
    result = video(runner, frames, style, "-o", tmp_path / "clip.mp4", *VIDEO_FAST)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: the work folder {frames} of output {tmp_path / 'clip.mp4'} is an input; "
                                  "choose another -o")


def test_options_of_single_images_do_not_apply(runner, tmp_path, style):
    """It refuses --checkpoint-every (a per-image option) with exit 2."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--checkpoint-every", "5")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: --checkpoint-every does not apply to 'nst video'")


def test_audio_the_container_cannot_hold(runner, tmp_path, style):
    """It exits 2 before stylising when the output container cannot carry the input's audio."""
    source = make_clip(tmp_path / "clip.mp4", frames=2, audio_seconds=0.3)
    result = video(runner, source, style, "-o", tmp_path / "out.webm", *VIDEO_FAST)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: output {tmp_path / 'out.webm'} cannot hold the aac audio of {source}; "
                                  "use .mkv (any audio) or .mp4")
    assert not (tmp_path / "out_frames").exists() and not (tmp_path / "out.webm").exists()


def test_no_space_left_while_writing_frames(runner, tmp_path, style, monkeypatch):
    """It exits 1 saying the disk is full, keeps the frames finished, and writes no output video."""
    import nstcli.image.io

    source = make_clip(tmp_path / "clip.mp4", frames=3)
    real_replace = os.replace
    written = {"n": 0}

    def replace(src, dst):
        if str(dst).endswith(".png"):
            written["n"] += 1
            if written["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(nstcli.image.io.os, "replace", replace)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 1
    frames = tmp_path / "out_frames"
    assert error_line(result) == (f"Error: cannot write {frames / 'frame_000002.png'} (No space left on device); "
                                  f"free some space; 1 of 3 frames are kept in {frames}; run the same command "
                                  "again to continue")
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(path.name for path in frames.glob("*.png")) == ["frame_000001.png"]


def test_missing_style_fails_before_any_frame(runner, tmp_path):
    """It exits 1 naming a missing style image and creates no work folder."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    result = video(runner, source, tmp_path / "nope.jpg", "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 1
    assert str(tmp_path / "nope.jpg") in error_line(result)
    assert not (tmp_path / "out_frames").exists()


def _jump_folder(tmp_path, frames=3):
    folder = tmp_path / "jump"
    folder.mkdir()
    for index, image in enumerate(jump_frames(frames=frames)):
        image.save(folder / f"f{index + 1}.png")
    return folder


def test_what_the_flow_loses_starts_from_the_frame_itself(runner, tmp_path, style):
    """It starts a later frame from the frame's own content where the object jumped further than the
    flow follows, and from the previous result carried along the flow elsewhere."""
    source = _jump_folder(tmp_path, frames=2)
    result = video(runner, source, style, "-o", f"{tmp_path / 'out'}/", "--weights", "random", "--size", "64",
                 "--steps", "3", "--frame-steps", "0", "--quiet")
    assert result.exit_code == 0, result.output
    second = pixels(tmp_path / "out" / "frame_000002.png")
    content = pixels(source / "f2.png")
    square = (slice(18, 30), slice(34, 46))  # inside the square's new place, clear of its rim
    assert np.abs(second[square] - content[square]).max() <= 1
    first = pixels(tmp_path / "out" / "frame_000001.png")
    still = (slice(0, 10), slice(0, 64))  # background far from the square does not move
    assert (np.abs(second[still] - first[still]) <= 1).mean() > 0.95  # DIS's smoothing spreads a little motion
    assert np.abs(first[square] - content[square]).mean() > 30  # carried along, the square would be background


def test_save_motion_writes_what_each_frame_was_built_from(runner, tmp_path, style):
    """It writes the flow, mask, warped previous result and start image of frames 2..n into
    OUT_motion/ beside the output, at the frame size, and nothing of the kind without the flag."""
    source = _jump_folder(tmp_path)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--save-motion")
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (tmp_path / "out_motion").iterdir())
    assert written == [f"{kind}_{index:06d}.png" for kind in ("flow", "mask", "start", "warped") for index in (2, 3)]
    sizes = {Image.open(tmp_path / "out_motion" / name).size for name in written}
    assert sizes == {open_clip(tmp_path / "out.mp4").size}
    mask = pixels(tmp_path / "out_motion" / "mask_000002.png")
    assert set(np.unique(mask)) <= {0, 128, 255} and (mask == 255).mean() > 0.5 and (mask < 255).any()
    plain = video(runner, source, style, "-o", f"{tmp_path / 'frames'}/", *VIDEO_FAST)
    assert plain.exit_code == 0, plain.output
    assert not (tmp_path / "frames_motion").exists() and not (tmp_path / "out_frames").exists()
