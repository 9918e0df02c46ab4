"""Files nst reads back (training checkpoints, model files, video work folders and their records) are
checked whole before use: a wrong type, a missing key or a folder where a file belongs is one `Error:`
line, and a failing run leaves no new output behind."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from clips import pan_frames
from conftest import error_line, make_image
from fastnets import TRAIN_FAST, StopAt, photos, tiny_model
from nstcli.video import loop as video
from nstcli.video import resume
from nstcli.cli.main import nst
from nstcli.config.fields import load_config
from nstcli.errors import Interrupted
from nstcli.fast.train import CHECKPOINT, TrainSettings, train, work_folder
from nstcli.video.formats import frame_size
from nstcli.video.output import work_folder as video_work_folder
from nstcli.video.reports import VideoCallback

# What `nst train ... TRAIN_FAST` runs with, so that a checkpoint made here is that command's.
TRAIN_CONFIG = load_config(None, {"weights": "random", "style_weight": 10, "style_layers": "relu1_1,relu2_1,relu3_1",
                                  "content_layers": "relu2_1"})
VIDEO_FAST = ["--weights", "random", "--size", "32", "--steps", "1", "--frame-steps", "1", "--quiet"]


# ---- training checkpoints ----------------------------------------------------------------------------

@pytest.fixture
def stopped(tmp_path):
    """A training run stopped at step 2, its checkpoint saved, and the CLI command that continues it."""
    style = make_image(tmp_path / "style.png", size=(48, 48), seed=7)
    data = photos(tmp_path / "photos", 4)
    output = tmp_path / "m.safetensors"
    settings = TrainSettings(steps=4, batch_size=2, crop_size=32, width=8, blocks=1, checkpoint_every=0,
                             preview_every=0, precision="fp32")
    with pytest.raises(Interrupted):
        train(style, data, output, TRAIN_CONFIG, settings, callbacks=[StopAt(2)])
    args = ["train", str(style), "--data", str(data), "-o", str(output), *TRAIN_FAST, "--steps", "4",
            "--checkpoint-every", "0", "--precision", "fp32"]
    checkpoint = work_folder(output) / CHECKPOINT
    assert checkpoint.is_file()
    return args, checkpoint, output


def edit_checkpoint(path: Path, change) -> None:
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


@pytest.mark.parametrize("change, what", [
    (lambda s: s.pop("optimiser"), "no 'optimiser'"),
    (lambda s: s.pop("net"), "no 'net'"),
    (lambda s: s.update(step="2"), "'step' is a str, not a int"),
    (lambda s: s.update(log={"step": 1}), "'log' is a dict, not a list"),
    (lambda s: s.update(log=[{"step": 1, "loss": "low"}]), "its loss log has a row that is not numbers by name"),
    (lambda s: s["net"].pop(next(iter(s["net"]))), "its network does not fit: "),
    (lambda s: s.update(generator=torch.zeros(3, dtype=torch.uint8)), "its crop generator state does not fit: "),
    (lambda s: s["optimiser"]["state"][0].update(exp_avg=torch.zeros(1)),
     "its optimiser's 'exp_avg' does not fit the network"),
])
def test_a_checkpoint_with_its_fingerprint_but_damaged_entries_is_one_error(runner, stopped, change, what):
    """Missing or mistyped entries of a checkpoint of this very run: exit 2, no model written."""
    args, checkpoint, output = stopped
    edit_checkpoint(checkpoint, change)
    result = runner.invoke(nst, args)
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith(f"Error: the checkpoint {checkpoint} is damaged ({what}")
    assert line.endswith("); delete it to start over")
    assert not output.exists()


def test_a_checkpoint_that_is_a_folder_is_refused_before_training(runner, tmp_path):
    """checkpoint.pt a folder: exit 2 before any step, and no model file left behind."""
    style = make_image(tmp_path / "style.png", size=(48, 48), seed=7)
    data = photos(tmp_path / "photos", 4)
    output = tmp_path / "m.safetensors"
    (work_folder(output) / CHECKPOINT).mkdir(parents=True)
    result = runner.invoke(nst, ["train", str(style), "--data", str(data), "-o", str(output), *TRAIN_FAST,
                                 "--steps", "2"])
    assert result.exit_code == 2, result.output
    assert error_line(result) == (f"Error: the checkpoint {work_folder(output) / CHECKPOINT} is a folder, not a "
                                  "file; remove it to start over")
    assert not output.exists()


# ---- model files ---------------------------------------------------------------------------------------

def rewrite_header(path: Path, change) -> Path:
    """Change the JSON header of a safetensors file in place (the tensor bytes kept after it)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])
    return path


def meta(change):
    def edit(header):
        value = json.loads(header["__metadata__"]["nstcli"])
        change(value)
        header["__metadata__"]["nstcli"] = json.dumps(value)
    return edit


def first_tensor(change):
    def edit(header):
        name = next(key for key in header if key != "__metadata__")
        change(header[name])
    return edit


@pytest.mark.parametrize("change", [
    lambda h: h["__metadata__"].update(nstcli=5),
    lambda h: h.update(__metadata__=["nstcli"]),
    meta(lambda m: m.update(architecture=[8, 1])),
    meta(lambda m: m.update(architecture={"width": "8", "blocks": 1})),
    meta(lambda m: m.update(training="long")),
    meta(lambda m: m.update(style=["a", "b"])),
    meta(lambda m: m.update(version="1")),
    first_tensor(lambda t: t.update(shape=5)),
    first_tensor(lambda t: t.update(shape="abc")),
    first_tensor(lambda t: t.update(dtype=7)),
    first_tensor(lambda t: t.update(data_offsets="0-10")),
    lambda h: h.update(extra=[1, 2]),
], ids=["metadata-number", "metadata-list", "architecture-list", "width-string", "training-string", "style-list",
        "version-string", "shape-number", "shape-string", "dtype-number", "offsets-string", "tensor-not-object"])
def test_a_model_header_of_wrong_json_types_is_one_error(runner, tmp_path, change):
    """Each JSON value of the wrong type: exit 1 (as any unreadable model), one line naming the file, no output."""
    model = rewrite_header(tiny_model(tmp_path / "m.safetensors"), change)
    photo = make_image(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["apply", str(model), str(photo), "-o", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert line.startswith(f"Error: model {model} ") or line.startswith(f"Error: {model} is not an nstcli style model")
    assert "unexpected" not in line
    assert not out.exists()


# ---- video work folders and their records ----------------------------------------------------------------

class StopAtFrame(VideoCallback):
    def on_frame(self, report):
        if report.index == 1:
            raise KeyboardInterrupt


@pytest.fixture
def half_done(tmp_path):
    """`nst video` of a 3-frame folder into out.mp4, stopped after its first 2 frames: (command, work folder, out)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=3, size=(48, 32))):
        image.save(frames / f"f{index + 1}.png")
    style = make_image(tmp_path / "style.png", size=(40, 40), seed=2)
    out = tmp_path / "out.mp4"
    config = load_config(None, {"weights": "random", "size": 32, "steps": 1})
    with pytest.raises(Interrupted):
        video.stylize_video(frames, [style], out, config, frame_steps=1, callbacks=[StopAtFrame()])
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
