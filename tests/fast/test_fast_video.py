"""nst video --model: every frame through the network, blended along the flow for stability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("cv2")

from clips import jump_frames, make_clip, pan_frames  # noqa: E402
from helpers import error_line, make_image  # noqa: E402
from fastnets import tiny_model  # noqa: E402
from nstcli.cli.main import nst  # noqa: E402
from nstcli.fast.video import stylize_video  # noqa: E402
from nstcli.video.reader import open_clip  # noqa: E402


@pytest.fixture
def model(tmp_path):
    return tiny_model(tmp_path / "tiny.safetensors")


def test_a_clip_through_the_model_keeps_frames_count_and_size(tmp_path, runner, model):
    clip = make_clip(tmp_path / "clip.mp4", frames=5, size=(64, 48))
    result = runner.invoke(nst, ["video", str(clip), "--model", str(model), "-o", str(tmp_path / "out.mp4"),
                                 "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 5 and summary["temporal_error"] is not None
    written = open_clip(tmp_path / "out.mp4")
    assert written.frames == 5 and written.size == (64, 48)


def test_blending_along_the_flow_lowers_the_temporal_error(tmp_path, model):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=6, size=(64, 48))):
        image.save(frames / f"f{index}.png")
    alone = stylize_video(frames, model, tmp_path / "alone", blend=0.0)
    stable = stylize_video(frames, model, tmp_path / "stable", blend=0.6)
    assert alone.frames == stable.frames == 6 and len(list((tmp_path / "stable").glob("*.png"))) == 6
    # (1 - 0.6)^2 = 0.16 of frame-by-frame where the flow is reliable
    assert stable.temporal_error < 0.3 * alone.temporal_error


def test_model_and_style_together_or_neither_are_usage_errors(tmp_path, runner, model):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    style = make_image(tmp_path / "style.png")
    both = runner.invoke(nst, ["video", str(clip), str(style), "--model", str(model), "-o", str(tmp_path / "o.mp4")])
    assert both.exit_code == 2 and "not both" in error_line(both)
    neither = runner.invoke(nst, ["video", str(clip), "-o", str(tmp_path / "o.mp4")])
    assert neither.exit_code == 2 and "--model" in error_line(neither)
    steps = runner.invoke(nst, ["video", str(clip), "--model", str(model), "-o", str(tmp_path / "o.mp4"),
                                "--steps", "5"])
    assert steps.exit_code == 2 and "--steps does not apply with --model" in error_line(steps)


def test_what_the_flow_loses_is_the_networks_own_frame(tmp_path, model):
    """It leaves pixels the flow cannot vouch for (an object that jumped further than it follows) to
    the network's frame, blending only the rest, and writes what each frame was built from."""
    frames = tmp_path / "jump"
    frames.mkdir()
    for index, image in enumerate(jump_frames(frames=2)):
        image.save(frames / f"f{index}.png")
    alone = stylize_video(frames, model, tmp_path / "alone", blend=0.0)
    stable = stylize_video(frames, model, tmp_path / "stable", blend=0.9, save_motion=True)
    assert alone.frames == stable.frames == 2

    def pixels(folder):
        return np.asarray(Image.open(folder / "frame_000002.png").convert("RGB"), dtype=np.int16)

    square = (slice(18, 30), slice(34, 46))
    assert np.abs(pixels(tmp_path / "stable")[square] - pixels(tmp_path / "alone")[square]).max() <= 1
    written = sorted(path.name for path in (tmp_path / "stable_motion").iterdir())
    assert written == ["flow_000002.png", "mask_000002.png", "start_000002.png", "warped_000002.png"]
