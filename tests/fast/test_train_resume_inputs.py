"""Resuming nst train: the style image is recognised by its contents, the photos by their names, sizes and
modification times; a checkpoint of other inputs is refused with exit 2, naming what changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from fastnets import StopAt, TRAIN_CONFIG, TRAIN_FAST, photos
from helpers import error_line, make_image
from nstcli.cli.main import nst
from nstcli.errors import ConfigError, Interrupted
from nstcli.fast.train import CHECKPOINT, TrainSettings, train, work_folder

SETTINGS = TrainSettings(steps=6, batch_size=2, crop_size=32, width=8, blocks=1, checkpoint_every=0,
                         preview_every=0)


@pytest.fixture
def interrupted(tmp_path):
    """A run stopped at step 2 of 6, its checkpoint saved: (style, data, output)."""
    style = make_image(tmp_path / "style.png", size=(48, 48), seed=7)
    data = photos(tmp_path / "photos", 5)
    output = tmp_path / "m.safetensors"
    with pytest.raises(Interrupted):
        train(style, data, output, TRAIN_CONFIG, SETTINGS, callbacks=[StopAt(2)])
    assert (work_folder(output) / CHECKPOINT).is_file()
    return style, data, output


def test_a_style_image_replaced_under_the_same_name_is_refused(runner, interrupted):
    """Another picture saved as style.png: the same command exits 2 naming the style, and writes no model."""
    style, data, output = interrupted
    make_image(style, size=(48, 48), seed=8)
    result = runner.invoke(nst, ["train", str(style), "--data", str(data), "-o", str(output), *TRAIN_FAST,
                                 "--steps", "6", "--checkpoint-every", "0", "--precision", "fp32"])
    assert result.exit_code == 2, result.output
    checkpoint = work_folder(output) / CHECKPOINT
    assert error_line(result) == (f"Error: {checkpoint} was saved by a run on other inputs: the style image {style} "
                                  "has other contents; put the original back to continue, or delete "
                                  f"{work_folder(output)} to start over")
    assert not output.exists() and checkpoint.is_file()


@pytest.mark.parametrize("change, named", [
    ("replace", "photo_1.png changed"),
    ("add", "photo_9.png added"),
    ("remove", "photo_0.png removed"),
    ("touch", "photo_3.png changed"),
])
def test_changed_training_photos_are_refused_naming_them(interrupted, change, named):
    """A photo replaced, added, removed or touched since the checkpoint: refused, naming that photo."""
    style, data, output = interrupted
    if change == "replace":
        make_image(data / "photo_1.png", size=(64, 48), seed=999)
    elif change == "add":
        make_image(data / "photo_9.png", size=(64, 48), seed=9)
    elif change == "remove":
        (data / "photo_0.png").unlink()
    else:
        stat = (data / "photo_3.png").stat()
        os.utime(data / "photo_3.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with pytest.raises(ConfigError) as caught:
        train(style, data, output, TRAIN_CONFIG, SETTINGS)
    assert str(caught.value) == (f"{work_folder(output) / CHECKPOINT} was saved by a run on other inputs: the "
                                 f"photos in {data} changed ({named}); put them back to continue, or delete "
                                 f"{work_folder(output)} to start over")
    assert not output.exists()


def test_the_style_is_recognised_by_contents_not_by_name_or_time(tmp_path, interrupted):
    """The same picture under another name (and a newer time) continues the run."""
    style, data, output = interrupted
    moved = Path(style).rename(tmp_path / "renamed.png")
    os.utime(moved)
    result = train(moved, data, output, TRAIN_CONFIG, SETTINGS)
    assert result.resumed_from == 2 and result.steps == 6


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
