"""Hostile and careless input, third round: frame rates, optimal starts, huge integers, video's work
folder and resume, enforced budgets, truncated and rotated clips, messages, --steps and recipes."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from clips import make_clip, pan_frames
from conftest import FAST, error_line, half_masks, make_image
from nstcli.stylize import single
from nstcli import api
from nstcli.video.reader import open_clip
from nstcli.cli.main import nst
from nstcli.errors import RunError
from nstcli.optim.lbfgs import LBFGS

VIDEO_FAST = ["--weights", "random", "--size", "32", "--steps", "1", "--frame-steps", "1", "--quiet"]
SCHEDULER_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                       "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX")


def video(runner, *args):
    return runner.invoke(nst, ["video", *map(str, args)])


def no_network(monkeypatch):
    """Computing anything fails the test: usage errors must cost no computing."""
    monkeypatch.setattr(single, "load_network", lambda *a, **k: pytest.fail("network loaded"))


def frame_folder(tmp_path: Path, count: int = 2) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=count, size=(48, 32))):
        image.save(folder / f"f{index + 1}.png")
    return folder


# ---- frame rates as typed from a spec sheet ------------------------------------------------------

@pytest.mark.parametrize("typed, rate", [("29.97", Fraction(30000, 1001)), ("23.976", Fraction(24000, 1001)),
                                         ("0.1", Fraction(1, 10)), ("12.5", Fraction(25, 2))])
def test_fps_of_any_decimal_is_a_short_fraction(runner, style, tmp_path, typed, rate):
    """It writes a folder's frames at --fps 29.97 as NTSC's 30000/1001 (and 0.1 as 1/10), not an overflow."""
    out = tmp_path / "out.mp4"
    result = video(runner, frame_folder(tmp_path), style, "-o", out, *VIDEO_FAST, "--fps", typed)
    assert result.exit_code == 0, result.output
    assert open_clip(out).rate == rate


@pytest.mark.parametrize("typed", ["nan", "inf", "-inf", "0", "1001", "1e400", "fast"])
def test_fps_that_is_no_rate_is_a_usage_error(runner, style, tmp_path, monkeypatch, typed):
    """It refuses --fps nan (and inf, 0, 1001, words) with exit 2 and the range, before computing."""
    no_network(monkeypatch)
    result = video(runner, frame_folder(tmp_path), style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--fps", typed)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: Invalid value for '--fps': {typed!r} is not a frame rate; give frames "
                                  "per second from 0.001 to 1000, e.g. 25 or 29.97 (see 'nst video --help')")
    assert not (tmp_path / "out_frames").exists()


@pytest.mark.parametrize("typed", ["nan", "inf"])
def test_temporal_weight_nan_is_a_usage_error(runner, style, tmp_path, monkeypatch, typed):
    """It refuses --temporal-weight nan or inf at the command line (exit 2), as config floats are."""
    no_network(monkeypatch)
    result = video(runner, frame_folder(tmp_path), style, "-o", tmp_path / "out.mp4", *VIDEO_FAST,
                   "--temporal-weight", typed)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: Invalid value for '--temporal-weight': {typed!r} is not a finite number "
                                  "of at least 0 (see 'nst video --help')")


# ---- an already optimal start ---------------------------------------------------------------------

def test_lbfgs_first_step_from_a_zero_gradient_stays_put():
    """It takes a zero step (no ZeroDivisionError) when the first gradient is exactly zero."""
    x = torch.ones(3, requires_grad=True)
    optimiser = LBFGS([x])

    def closure():
        optimiser.zero_grad()
        loss = (x.detach() * 0).sum() + 0 * x.sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    optimiser.step(closure)
    assert torch.equal(x.detach(), torch.ones(3))


def test_style_weight_zero_from_the_content_runs(runner, content, tmp_path):
    """It finishes --style-weight 0 from the content image (a zero gradient at step 1), exit 0."""
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(content), "-o", str(out), *FAST, "--style-weight", "0",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"]["loss"] == 0
    assert out.is_file()


# ---- integers with thousands of digits --------------------------------------------------------------

@pytest.mark.parametrize("spec", ["1/" + "9" * 5000, "9" * 5000 + "/2", "auto/" + "9" * 5000, "1/2000000"])
def test_shard_with_a_huge_number_is_a_usage_error(runner, style, tmp_path, monkeypatch, spec):
    """It refuses --shard with a number of thousands of digits (beyond int()) with exit 2, quoting it short."""
    no_network(monkeypatch)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    make_image(tmp_path / "photos" / "a.png")
    result = runner.invoke(nst, ["batch", str(tmp_path / "photos"), "--style", str(style), "-o",
                                 str(tmp_path / "out"), "--shard", spec])
    assert result.exit_code == 2
    shown = repr(spec) if len(spec) <= 40 else f"{spec[:30] + '...'!r} ({len(spec)} characters)"
    assert error_line(result) == (f"Error: --shard {shown}: a shard number or count is at most 1,000,000; give "
                                  "K/N with 1 <= K <= N, e.g. --shard 2/4")


@pytest.mark.parametrize("variable", ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MAX", "JOB_COMPLETION_INDEX"])
def test_scheduler_variable_with_thousands_of_digits_is_a_usage_error(runner, style, tmp_path, monkeypatch,
                                                                       variable):
    """It refuses a scheduler index of 5000 digits with exit 2 naming the variable."""
    no_network(monkeypatch)
    for name in SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    environment = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}
    if variable == "JOB_COMPLETION_INDEX":
        environment = {}
    environment[variable] = "7" * 5000
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    make_image(tmp_path / "photos" / "a.png")
    result = runner.invoke(nst, ["batch", str(tmp_path / "photos"), "--style", str(style), "-o",
                                 str(tmp_path / "out"), "--shard", "auto/4" if variable == "JOB_COMPLETION_INDEX"
                                 else "auto"])
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: --shard auto: {variable}={'7' * 30 + '...'!r} (5000 characters) has "
                                  "5000 digits, more than any scheduler's index; it is set by the scheduler, so "
                                  "check the job's environment")


# ---- nst video leaves nothing behind a refused or failed run -------------------------------------

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


# ---- budgets ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, budget, end", [
    ("32", "1MB", "32x21 px scale, which then runs whole and needs about 840 MB, more than the 1 MB --max-memory "
                  "allows; not even the smallest tiles fit: raise --max-memory or lower --size"),
    ("1024", "2GB", "1024x683 px scale, which then runs whole and needs about 2.5 GB, more than the 2.0 GB "
                    "--max-memory allows; give --tile 544 or less, or leave it out"),
])
def test_tile_larger_than_the_image_keeps_the_memory_check(runner, content, style, tmp_path, monkeypatch, size,
                                                           budget, end):
    """It refuses --tile 4096 over a budget the whole scale exceeds (it would run untiled), exit 2."""
    no_network(monkeypatch)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST,
                                 "--size", size, "--start-size", "none", "--tile", "4096", "--max-memory", budget])
    assert result.exit_code == 2
    assert error_line(result) == f"Error: --tile 4096 is at least the {end}"
    assert not (tmp_path / "out.png").exists()


# ---- what a clip holds ------------------------------------------------------------------------------

def _faststart_clip(path: Path, frames: int) -> Path:
    """An MP4 whose index (and so its declared frame count) comes before the frames."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index, image in enumerate(pan_frames(path.parent, frames, (64, 48))):
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_truncated_clip_says_what_was_lost(runner, style, tmp_path):
    """It warns naming the frames declared and read when a clip is cut short, and writes what was read."""
    whole = _faststart_clip(tmp_path / "whole.mp4", 8)
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
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise: the left edge ends at the bottom
        for index in range(2):
            frame = av.VideoFrame.from_image(stored)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert open_clip(path).size == (48, 64)
    result = video(runner, path, style, "-o", tmp_path / "out", *VIDEO_FAST, "--steps", "0", "--frame-steps", "0")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "frame_000001.png") as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (32, 24)  # portrait
    top, bottom = pixels[:10].mean(axis=(0, 1)), pixels[-10:].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60  # blue on top
    assert bottom[0] > 200 and bottom[2] < 60  # red at the bottom


# ---- messages that name the cause ---------------------------------------------------------------------

def test_repeated_region_colour_is_named(runner, content, style, tmp_path, monkeypatch):
    """It names the colour listed twice in --region-colors (exit 2), not a missing pixel."""
    no_network(monkeypatch)
    labels = make_image(tmp_path / "labels.png")
    result = runner.invoke(nst, ["stylize", str(content), str(style), str(style), "-o", str(tmp_path / "out.png"),
                                 *FAST, "--style-regions", str(labels), "--region-colors", "red,#ff0000"])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --region-colors lists the colour #ff0000 ('red' and '#ff0000') twice, for "
                                  "styles 1 and 2; give each style image its own colour")


@pytest.mark.parametrize("environment, message", [
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"},
     "SLURM_ARRAY_TASK_ID is 9, outside the array's SLURM_ARRAY_TASK_MIN..MAX (1..8); check the job's environment, "
     "or number the tasks 1..N and give the count: --shard auto/N"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4"},
     "SLURM_ARRAY_TASK_ID is 5, outside 1..4 (SLURM_ARRAY_TASK_COUNT is 4); check the job's environment, or give "
     "the count: --shard auto/N"),
])
def test_slurm_task_outside_its_array_says_so(runner, style, tmp_path, monkeypatch, environment, message):
    """It says the task ID is outside MIN..MAX (or 1..COUNT), not that the array's size is unknown."""
    no_network(monkeypatch)
    for name in SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    make_image(tmp_path / "photos" / "a.png")
    result = runner.invoke(nst, ["batch", str(tmp_path / "photos"), "--style", str(style), "-o",
                                 str(tmp_path / "out"), "--shard", "auto"])
    assert result.exit_code == 2
    assert error_line(result) == f"Error: --shard auto: {message}"


def test_forced_tile_with_wasserstein_masks_names_tile(runner, style, tmp_path, monkeypatch):
    """It names --tile, not --max-memory, when forced tiles meet masks with the Wasserstein loss (exit 2)."""
    no_network(monkeypatch)
    photo = make_image(tmp_path / "photo.png", size=(64, 64), seed=1)
    left, right = half_masks(tmp_path / "masks", size=(64, 64))
    result = runner.invoke(nst, ["stylize", str(photo), str(style), str(style), "-o", str(tmp_path / "out.png"),
                                 *FAST, "--size", "64", "--tile", "32", "--style-loss", "wasserstein",
                                 "--style-mask", str(left), "--style-mask", str(right)])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --tile 32 would run the 64x64 px scale in tiles, which runs with masks "
                                  "with --style-loss wasserstein cannot use yet; drop --tile (or give --tile 0)")


# ---- --steps and a recipe's first_steps ----------------------------------------------------------------

def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text("first_steps: 1000\nstart_size: none\n")
    return path


def test_steps_on_the_command_line_wins_over_a_recipes_first_steps(runner, content, style, tmp_path):
    """It runs --steps 2 with a config setting first_steps: 1000, as the flag says."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST,
                                 "--steps", "2", "--config", str(_recipe(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 2


def test_first_steps_given_too_still_applies(runner, content, style, tmp_path):
    """It keeps --first-steps when given beside --steps (here 1 step at the only scale)."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST,
                                 "--steps", "2", "--first-steps", "1", "--config", str(_recipe(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 1


def test_shipped_recipe_is_found_by_name_from_anywhere(tmp_path, monkeypatch):
    """It reads --config wasserstein from the installed package when no such file is in the working folder."""
    from nstcli.config.fields import load_config
    from nstcli.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    shipped = Path(__file__).resolve().parent.parent / "configs" / "wasserstein.yaml"
    assert load_config("wasserstein") == load_config("wasserstein.yaml") == load_config(shipped)
    (tmp_path / "wasserstein").write_text("steps: 7\n")  # a file of that name comes first
    assert load_config("wasserstein").steps == 7
    with pytest.raises(ConfigError, match=r"^config file nothing\.yaml does not exist; check the path given to --config$"):
        load_config("nothing.yaml")


@pytest.mark.parametrize("command", [["video", "clip.mp4", "style.png", "-o", "out.mp4", "--frame-steps"],
                                     ["video", "clip.mp4", "style.png", "-o", "out.mp4", "--fps"],
                                     ["ui", "--port"]])
def test_click_options_quote_a_huge_value_short(runner, command):
    """It refuses an integer of 5000 digits in any click option with exit 2 and a short quote of it."""
    result = runner.invoke(nst, [*command, "9" * 5000])
    assert result.exit_code == 2
    line = error_line(result)
    assert f"{'9' * 30 + '...'!r} (5000 characters)" in line and len(line) < 250


def test_download_with_a_huge_content_length_still_downloads(tmp_path, monkeypatch):
    """It downloads from a server whose Content-Length has 5000 digits (the bar just has no total)."""
    import io
    import urllib.request

    from nstcli.network import weights

    class Response(io.BytesIO):
        headers = {"Content-Length": "9" * 5000}

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"weights"))
    weights.fetch("https://example.invalid/vgg19.pth", tmp_path / "vgg19.pth", progress=True)
    assert (tmp_path / "vgg19.pth").read_bytes() == b"weights"


def test_batch_over_the_memory_budget_leaves_no_output_folder(runner, style, tmp_path, monkeypatch):
    """It refuses a batch over --max-memory with exit 2 before loading the network or making -o's folder."""
    no_network(monkeypatch)
    make_image(tmp_path / "photos" / "a.png")
    result = runner.invoke(nst, ["batch", str(tmp_path / "photos"), "--style", str(style), "-o",
                                 str(tmp_path / "out"), *FAST, "--max-memory", "1MB"])
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: --size 32 does not fit the 1 MB --max-memory allows even in tiles")
    assert not (tmp_path / "out").exists()


def test_clip_whose_frames_are_the_style_image_runs(runner, tmp_path):
    """It stylises a clip whose frames are the style image itself (zero gradient at frame 1), exit 0."""
    folder = tmp_path / "frames"
    picture = make_image(folder / "f1.png", size=(48, 32), seed=3)
    make_image(folder / "f2.png", size=(48, 32), seed=3)
    result = video(runner, folder, picture, "-o", tmp_path / "out", *VIDEO_FAST, "--steps", "2")
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == ["frame_000001.png", "frame_000002.png"]
