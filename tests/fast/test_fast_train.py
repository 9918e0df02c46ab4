"""nst train: the loss goes down, a resumed run equals an uninterrupted one, the dataset is checked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastnets import StopAt, TRAIN_CONFIG, TRAIN_FAST, photos
from helpers import error_line, make_image
from nstcli.cli.main import nst
from nstcli.config.fields import load_config
from nstcli.errors import ConfigError, Interrupted
from nstcli.fast import modelfile
from nstcli.fast.dataset import Crops
from nstcli.fast.network import Architecture, TransformNet
from nstcli.fast.loss import Perceptual
from nstcli.fast.train import CHECKPOINT, TrainSettings, style_side, train, work_folder
from nstcli.image.io import load_image

SETTINGS = TrainSettings(steps=8, batch_size=2, crop_size=32, width=8, blocks=1, checkpoint_every=3,
                         preview_every=0)


@pytest.fixture
def data(tmp_path) -> Path:
    return photos(tmp_path / "photos", 5)


@pytest.fixture
def style_image(tmp_path) -> Path:
    return make_image(tmp_path / "style.png", size=(48, 48), seed=7)


def weights_of(path: Path) -> dict:
    net, _ = modelfile.load(path)
    return net.state_dict()


def test_training_lowers_the_loss_on_held_out_photos(tmp_path, data, style_image):
    """A few steps on generated photos lower the perceptual loss on photos the network never saw."""
    held_out = torch.cat([load_image(make_image(tmp_path / f"held_{i}.png", size=(32, 32), seed=500 + i))
                          for i in range(3)])
    settings = TrainSettings(steps=25, batch_size=2, crop_size=32, width=8, blocks=1, lr=5e-3,
                             checkpoint_every=0, preview_every=0)
    loss = Perceptual(TRAIN_CONFIG, load_image(style_image, size=style_side(settings)), torch.device("cpu"))
    torch.manual_seed(TRAIN_CONFIG.seed)  # the same initial network train() starts from
    before = TransformNet(Architecture(8, 1))
    with torch.no_grad():
        start = float(loss(before(held_out), held_out)[0])
    result = train(style_image, data, tmp_path / "m.safetensors", TRAIN_CONFIG, settings)
    net, info = modelfile.load(result.output)
    with torch.no_grad():
        end = float(loss(net(held_out), held_out)[0])
    assert end < 0.7 * start, (start, end)
    assert info.style == "style" and info.training["steps"] == 25 and info.training["batch_size"] == 2


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, data, style_image):
    whole = train(style_image, data, tmp_path / "whole.safetensors", TRAIN_CONFIG, SETTINGS)
    output = tmp_path / "resumed.safetensors"
    with pytest.raises(Interrupted, match="interrupted at step 5 of 8; saved a checkpoint"):
        train(style_image, data, output, TRAIN_CONFIG, SETTINGS, callbacks=[StopAt(5)])
    assert (work_folder(output) / CHECKPOINT).is_file() and not output.exists()
    resumed = train(style_image, data, output, TRAIN_CONFIG, SETTINGS)
    assert resumed.resumed_from == 5 and resumed.steps == 8
    assert not (work_folder(output) / CHECKPOINT).exists()  # finished: nothing left to resume
    a, b = weights_of(whole.output), weights_of(output)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert [row["loss"] for row in whole.log] == [row["loss"] for row in resumed.log]


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, data, style_image):
    output = tmp_path / "m.safetensors"
    with pytest.raises(Interrupted):
        train(style_image, data, output, TRAIN_CONFIG, SETTINGS, callbacks=[StopAt(2)])
    with pytest.raises(ConfigError, match="another training run .*settings"):
        train(style_image, data, output, TRAIN_CONFIG, TrainSettings(**{**SETTINGS.__dict__, "lr": 5e-3}))


def test_crops_are_reproducible_from_the_generator_state(data):
    files = sorted(data.glob("*.png"))
    first = Crops(files, 32, torch.Generator().manual_seed(3))
    first.batch(2)
    state = first.generator.get_state()
    expected = first.batch(3)
    again = Crops(files, 32, torch.Generator())  # an empty cache, as after a resume
    again.generator.set_state(state)
    assert torch.equal(again.batch(3), expected)


def run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                         os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nstcli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.e2e
def test_sigterm_saves_a_checkpoint_exits_130_and_the_same_command_continues(tmp_path, data, style_image):
    args = ["train", str(style_image), "--data", str(data), "-o", "m.safetensors", "--steps", "400",
            "--checkpoint-every", "2", *TRAIN_FAST]
    process = run_cli(*args, cwd=tmp_path)
    folder = tmp_path / "m_training"
    deadline = time.monotonic() + 180
    while not (folder / CHECKPOINT).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # training is under way once the first checkpoint is there
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "interrupted at step" in lines[0] and "run the same command again" in lines[0]
    assert "Traceback" not in err
    checkpoint = torch.load(folder / CHECKPOINT, weights_only=True)
    stopped = checkpoint["step"]
    assert 0 < stopped < 400
    # Continue, but only to a few steps past the interruption: --steps may change on resume.
    process = run_cli(*[a if a != "400" else str(stopped + 3) for a in args], "--json", cwd=tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert f'"resumed_from": {stopped}' in out and (tmp_path / "m.safetensors").is_file()


def test_too_few_images_is_a_usage_error_that_counts_them(tmp_path, runner, style_image):
    folder = photos(tmp_path / "few", 2)
    result = runner.invoke(nst, ["train", str(style_image), "--data", str(folder), "-o", str(tmp_path / "m.safetensors"),
                                 *TRAIN_FAST, "--steps", "1"])
    assert result.exit_code == 2
    assert "found 2 images" in error_line(result) and "at least 4" in error_line(result)


def test_unreadable_photos_are_reported_and_skipped(tmp_path, runner, style_image):
    folder = photos(tmp_path / "mixed", 4)
    (folder / "nested").mkdir()
    make_image(folder / "nested" / "deep.jpg", size=(64, 48), seed=9)  # found recursively
    (folder / "broken.jpg").write_text("not a photo")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image extension: ignored, not reported")
    (folder / ".hidden.png").write_text("hidden: ignored")
    result = runner.invoke(nst, ["train", str(style_image), "--data", str(folder), "-o", str(tmp_path / "m.safetensors"),
                                 *TRAIN_FAST, "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: skipping")]
    assert len(warnings) == 2 and any("broken.jpg" in w for w in warnings) and any("empty.png" in w for w in warnings)
    assert '"steps": 2' in result.stdout
    info, _ = modelfile.read_header(tmp_path / "m.safetensors")
    assert info.training["images"] == 5


@pytest.mark.parametrize("data_arg, message", [("missing", "does not exist"), ("file.png", "not a folder")])
def test_data_that_is_not_a_folder(tmp_path, runner, style_image, data_arg, message):
    make_image(tmp_path / "file.png")
    result = runner.invoke(nst, ["train", str(style_image), "--data", str(tmp_path / data_arg),
                                 "-o", str(tmp_path / "m.safetensors"), *TRAIN_FAST])
    assert result.exit_code == 2 and message in error_line(result)


def test_the_model_name_must_end_in_safetensors(tmp_path, runner, data, style_image):
    result = runner.invoke(nst, ["train", str(style_image), "--data", str(data), "-o", str(tmp_path / "m.pt"),
                                 *TRAIN_FAST])
    assert result.exit_code == 2 and ".safetensors" in error_line(result)


def test_previews_are_written_every_n_steps(tmp_path, data, style_image):
    settings = TrainSettings(**{**SETTINGS.__dict__, "steps": 4, "preview_every": 2})
    result = train(style_image, data, tmp_path / "m.safetensors", TRAIN_CONFIG, settings)
    assert [p.name for p in result.previews] == ["preview_000002.png", "preview_000004.png"]
    assert all(p.is_file() for p in result.previews)


def test_preview_every_0_writes_no_preview(tmp_path):
    """The help says 0 disables previews: not even the last step gets one."""
    config = load_config(None, {"weights": "random", "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1"})
    settings = TrainSettings(steps=2, batch_size=2, crop_size=32, width=8, blocks=1, checkpoint_every=0,
                             preview_every=0)
    output = tmp_path / "m.safetensors"
    result = train(make_image(tmp_path / "style.png", size=(40, 40)), photos(tmp_path / "photos", 4), output,
                   config, settings)
    assert result.previews == [] and output.is_file()
    assert list(work_folder(output).glob("preview_*.png")) == []
