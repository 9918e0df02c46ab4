"""Every command that writes checks all its outputs before any work, with stylize's messages and codes:
the folder can be made, the output is not an input, the extension fits, existing files follow the rules;
and whatever it writes gets the umask's permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clips import pan_frames
from fastnets import TRAIN_FAST, photos, tiny_model
from helpers import FAST, VIDEO_FAST, error_line, make_image, mode
from nstcli.stylize import single
from nstcli import api
from nstcli.network import load as network
from nstcli.cli.main import nst
from nstcli.fast import apply as fast_apply
from nstcli.fast import modelfile
from nstcli.fast import video as fast_video
from nstcli.network import sources
from nstcli.network import weights

@pytest.fixture
def no_work(monkeypatch):
    """Loading any network (VGG19 or a trained one) fails the test: a refused output costs no work."""
    def refuse(*args, **kwargs):
        pytest.fail("work started before the output was checked")

    monkeypatch.setattr(single, "load_network", refuse)
    monkeypatch.setattr(network, "load_network", refuse)
    monkeypatch.setattr(modelfile, "load", refuse)
    monkeypatch.setattr(fast_apply, "load_model", refuse)
    monkeypatch.setattr(fast_video, "load_model", refuse)


@pytest.fixture
def files(tmp_path):
    make_image(tmp_path / "content.png", size=(48, 32), seed=1)
    make_image(tmp_path / "style.png", size=(40, 40), seed=2)
    tiny_model(tmp_path / "m.safetensors")
    photos(tmp_path / "photos", 4)
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, image in enumerate(pan_frames(tmp_path, frames=2, size=(48, 32))):
        image.save(frames / f"f{index + 1}.png")
    (tmp_path / "afile").write_text("a file where a folder is needed")
    return tmp_path


def command(name: str, output: str) -> list[str]:
    return {
        "stylize": ["stylize", "content.png", "style.png", "-o", output, "--weights", "random", "--quiet"],
        "batch": ["batch", "photos", "--style", "style.png", "-o", output, "--weights", "random", "--quiet"],
        "train": ["train", "style.png", "--data", "photos", "-o", output, *TRAIN_FAST, "--steps", "1"],
        "export": ["export", "m.safetensors", "-o", output],
        "apply": ["apply", "m.safetensors", "content.png", "-o", output, "--quiet"],
        "apply-folder": ["apply", "m.safetensors", "photos", "-o", output, "--quiet"],
        "video": ["video", "frames", "style.png", "-o", output, *VIDEO_FAST],
        "video-model": ["video", "frames", "--model", "m.safetensors", "-o", output, "--quiet"],
    }[name]


def run_in(folder: Path, runner, args):
    previous = os.getcwd()
    os.chdir(folder)
    try:
        return runner.invoke(nst, args)
    finally:
        os.chdir(previous)


@pytest.mark.parametrize("name, output, folder", [
    ("stylize", "afile/out.png", "afile"),
    ("batch", "afile/out", "afile/out"),
    ("train", "afile/m.safetensors", "afile"),
    ("export", "afile/m.onnx", "afile"),
    ("apply", "afile/out.png", "afile"),
    ("apply-folder", "afile/out", "afile/out"),
    ("video", "afile/out.mp4", "afile"),
    ("video", "afile/out/", "afile/out"),
    ("video-model", "afile/out.mp4", "afile"),
    ("video-model", "afile/out/", "afile/out"),
])
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(runner, files, no_work, name, output,
                                                                         folder):
    """It refuses -o under a file (exit 1, stylize's message) before loading any network, for every command."""
    result = run_in(files, runner, command(name, output))
    assert result.exit_code == 1, result.output
    assert error_line(result) == f"Error: cannot create the output folder {folder}: afile is a file; choose another -o path"
    assert result.stdout == ""


@pytest.mark.parametrize("name, output, input_name", [
    ("train", "link.safetensors", "style.png"),
    ("train", "m.safetensors", "m.safetensors"),  # the model file named as the style image
    ("export", "m.onnx", "m.onnx"),
    ("apply", "model.png", "model.png"),
    ("video-model", "m.mp4", "m.mp4"),
])
def test_an_output_that_is_an_input_is_refused(runner, files, no_work, name, output, input_name):
    """It refuses an -o that is one of the command's inputs (the style image, the model) with exit 2."""
    args = command(name, output)
    if name == "train" and output == "link.safetensors":
        (files / "link.safetensors").symlink_to("style.png")
    elif name == "train":
        (files / "m.safetensors").unlink()
        make_image(files / "picture.png", size=(40, 40), seed=2).rename(files / "m.safetensors")  # a photo so named
        args = ["train", "m.safetensors", *args[2:]]
    else:  # the model file is the output, whatever it is called
        (files / "m.safetensors").rename(files / input_name)
        args = [input_name if arg == "m.safetensors" else arg for arg in args]
    before = (files / input_name).read_bytes()
    result = run_in(files, runner, args)
    assert result.exit_code == 2, result.output
    same = "" if output == input_name else f" (the same file as {input_name})"
    assert error_line(result) == (f"Error: output {output} is also an input{same}; writing it would replace that "
                                  "input: choose another -o")
    assert (files / input_name).read_bytes() == before


@pytest.mark.parametrize("name, output, message", [
    ("train", "m.pt", "Error: output m.pt has unknown extension '.pt'; use one of .safetensors"),
    ("export", "m.txt", "Error: output m.txt has unknown extension '.txt'; use one of .onnx"),
    ("train", "d.safetensors", "Error: output d.safetensors is a folder; give a file name such as "
                               "d.safetensors/model.safetensors"),
    ("export", "d.onnx", "Error: output d.onnx is a folder; give a file name such as d.onnx/model.onnx"),
])
def test_a_bad_output_name_is_a_usage_error_in_stylize_words(runner, files, no_work, name, output, message):
    """train and export word a wrong extension or a folder -o as stylize does (exit 2)."""
    if output.startswith("d."):
        (files / output).mkdir()
    result = run_in(files, runner, command(name, output))
    assert result.exit_code == 2, result.output
    assert error_line(result) == message


def test_a_training_work_folder_that_is_a_file_is_refused_before_training(runner, files, no_work):
    """m_training beside the model is where checkpoints go: a file there stops train before it trains."""
    (files / "m_training").write_text("not a folder")
    result = run_in(files, runner, command("train", "m.safetensors"))
    assert result.exit_code == 1, result.output
    assert error_line(result) == ("Error: cannot create the work folder m_training: m_training is a file; "
                                  "choose another -o path")


@pytest.mark.parametrize("name", ["video", "video-model"])
def test_a_video_gets_the_umask_permissions(runner, files, umask, name):
    """A video file nst writes is 0644 under a 022 umask, like every image it writes (not mkstemp's 0600)."""
    result = run_in(files, runner, command(name, "out.mp4"))
    assert result.exit_code == 0, result.output
    assert mode(files / "out.mp4") == 0o644


@pytest.mark.parametrize("name", ["stylize", "reconstruct"])
def test_a_checkpoint_folder_that_cannot_be_made_is_refused_before_any_work(runner, files, no_work, name):
    """OUT_checkpoints/ beside the output is written during the run: a file there stops it before any work."""
    (files / "out_checkpoints").write_text("a file where checkpoints go")
    args = (command("stylize", "out.png") if name == "stylize" else
            ["reconstruct", "content", "content.png", "-o", "out.png", "--weights", "random", "--quiet"])
    result = run_in(files, runner, [*args, "--checkpoint-every", "1"])
    assert result.exit_code == 1, result.output
    assert error_line(result) == ("Error: cannot create the checkpoint folder out_checkpoints: out_checkpoints is a "
                                  "file; choose another -o path")
    assert not (files / "out.png").exists()


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_umask_mode(runner, content, style, tmp_path, umask, mask, expected):
    """It writes the output, checkpoints, contact sheet and loss curve with the umask's mode, not 0600."""
    umask(mask)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--size", "32", "--steps", "2", "--checkpoint-every", "1", "--quiet",
                                 "--contact-sheet", "--loss-curve"])
    assert result.exit_code == 0, result.output
    written = [out, tmp_path / "out_progress.png", tmp_path / "out_loss.png",
               *sorted((tmp_path / "out_checkpoints").iterdir())]
    assert len(written) == 5
    assert {path.name: mode(path) for path in written} == {path.name: expected for path in written}


def test_replaced_file_keeps_its_mode(runner, content, style, tmp_path, umask):
    """It gives a replaced output the mode the old file had, as writing over it in place would."""
    out = make_image(tmp_path / "out.png")
    out.chmod(0o664)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o664


def test_batch_outputs_and_weights_cache_get_the_umask_mode(runner, content, style, tmp_path, umask,
                                                             isolated_cache):
    """It writes batch outputs and the imported weights cache as 0644 under umask 022."""
    result = runner.invoke(nst, ["batch", str(content), "--style", str(style), "-o", str(tmp_path / "out"),
                                 *FAST])
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "out" / "content__style.png") == 0o644
    import torch

    source = tmp_path / "vgg.pth"
    torch.save(weights.random_state_dict(seed=1), source)
    imported = runner.invoke(nst, ["weights", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    assert mode(isolated_cache / sources.CACHE_FILE) == 0o644
