"""`nst video`'s work folder (OUT_frames/): a refused or failed run leaves none behind, a record of
another run does not block, and a resumed run is recognised by the clip's content, not its name."""

from __future__ import annotations

import json

import pytest

from clips import frame_folder, make_clip
from helpers import VIDEO_FAST, error_line, make_image, no_network, video
from nstcli.config.commands import VideoSettings
from nstcli import api
from nstcli.video.reader import open_clip
from nstcli.stylize import single
from nstcli.video.reports import VideoCallback
from nstcli.errors import Interrupted, RunError
from nstcli.config.fields import load_config
from nstcli.video.output import work_folder as video_work_folder
from nstcli.video.formats import frame_size
from nstcli.cli.main import nst
from nstcli.video import loop, resume


def test_video_over_the_memory_budget_leaves_no_work_folder(runner, style, tmp_path, monkeypatch):
    """It refuses --max-memory 1MB with exit 2 before computing, and creates no OUT_frames/."""
    no_network(monkeypatch)
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--max-memory", "1MB")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: --size 32 does not fit the 1 MB --max-memory allows")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "scene-0.png", "style.png"]


def test_video_forced_tile_is_refused_before_frame_one(runner, style, tmp_path, monkeypatch):
    """It refuses --tile 32 for a video (frame 2 could not be tiled) before computing frame 1, naming --tile."""
    no_network(monkeypatch)
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--size", "64", "--tile", "32")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --tile 32 would run the 64x48 px scale in tiles, which runs with extra "
                                  "terms (video) cannot use yet; drop --tile (or give --tile 0)")
    assert not (tmp_path / "out_frames").exists()


def test_video_failing_at_frame_one_leaves_nothing_that_blocks_the_next_run(runner, style, tmp_path,
                                                                            monkeypatch):
    """It removes the work folder of a run that failed at frame 1 (exit 1); the corrected command runs."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    real = api.stylize

    def overflow(*args, **kwargs):
        raise RunError("the loss became inf at step 1")

    monkeypatch.setattr(single, "stylize", overflow)
    failed = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert failed.exit_code == 1
    assert error_line(failed) == "Error: the loss became inf at step 1"
    assert not (tmp_path / "out_frames").exists()
    monkeypatch.setattr(single, "stylize", real)
    fixed = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--style-weight", "5")
    assert fixed.exit_code == 0, fixed.output
    assert open_clip(tmp_path / "out.mp4").frames == 2


def test_video_record_without_frames_does_not_block(runner, style, tmp_path):
    """It replaces a work folder's record of another run when the folder holds no frame (left by older runs)."""
    source = make_clip(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "out_frames").mkdir()
    (tmp_path / "out_frames" / ".nst-video.json").write_text(json.dumps({"input": "another clip"}))
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out_frames").exists()


def test_resume_recognises_the_clip_by_its_content_not_its_name(runner, style, tmp_path, monkeypatch):
    """It refuses to resume when the clip was replaced by another of the same length and size (exit 2)."""
    source = make_clip(tmp_path / "clip.mp4", frames=3, seed=0)
    real = api.stylize
    calls = {"n": 0}

    def interrupt_at_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(single, "stylize", interrupt_at_second)
    assert video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST).exit_code == 130
    monkeypatch.setattr(single, "stylize", real)
    make_clip(tmp_path / "other" / "clip.mp4", frames=3, seed=7).replace(source)
    result = video(runner, source, style, "-o", tmp_path / "out.mp4", *VIDEO_FAST)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {tmp_path / 'out_frames'} holds frames of another run (different "
                                  "input); delete it, or re-run with the same settings to continue it")


class StopAtFrame(VideoCallback):
    def on_frame(self, report):
        if report.index == 1:
            raise KeyboardInterrupt


@pytest.fixture
def half_done(tmp_path):
    """`nst video` of a 3-frame folder into out.mp4, stopped after its first 2 frames: (command, work folder, out)."""
    frames = frame_folder(tmp_path, 3)
    style = make_image(tmp_path / "style.png", size=(40, 40), seed=2)
    out = tmp_path / "out.mp4"
    config = load_config(None, {"weights": "random", "size": 32, "steps": 1})
    with pytest.raises(Interrupted):
        loop.stylize_video(frames, [style], out, config, VideoSettings(frame_steps=1), callbacks=[StopAtFrame()])
    folder = video_work_folder(out)
    assert (folder / "frame_000002.png").is_file() and not out.exists()
    return ["video", str(frames), str(style), "-o", str(out), *VIDEO_FAST], folder, out


@pytest.mark.parametrize("damage, message", [
    (lambda f: ((f / "frame_000002.png").unlink(), (f / "frame_000002.png").mkdir()),
     "Error: {f}/frame_000002.png is a folder, not a frame this run wrote; delete it to continue from the frame "
     "before it, or delete {f} to start over"),
    (lambda f: (f / "frame_000002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20),
     "Error: {f}/frame_000002.png is damaged (not a PNG of {w}x{h} px); delete it to continue from the frame "
     "before it, or delete {f} to start over"),
    (lambda f: ((f / resume.FRAME_LOG).unlink(), (f / resume.FRAME_LOG).mkdir()),
     "Error: the frame log {f}/" + resume.FRAME_LOG + " is a folder, not a file; delete it to continue"),
    (lambda f: ((f / resume.MANIFEST).unlink(), (f / resume.MANIFEST).mkdir()),
     "Error: the record {f}/" + resume.MANIFEST + " is a folder, not a file; delete {f} to start over"),
])
def test_a_damaged_work_folder_is_one_error(runner, half_done, damage, message):
    """A frame or record of the work folder that is a folder or damaged: exit 2, nothing written."""
    args, folder, out = half_done
    damage(folder)
    result = runner.invoke(nst, args)
    assert result.exit_code == 2, result.output
    width, height = frame_size((48, 32), 32, even=True)
    assert error_line(result) == message.format(f=folder, w=width, h=height)
    assert not out.exists()
