"""What a new user meets in the first hour: previews that --preview-every 0 turns off, help text that says
the defaults it uses, result paths on their own line under a progress bar, one exit code and a working
install command for a missing extra, and --preserve-color given alone."""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys

import pytest

from conftest import error_line, make_image
from fastnets import photos, tiny_model
from nstcli import api, extras
from nstcli.cli.main import nst
from nstcli.config.fields import load_config
from nstcli.fast.train import TrainSettings, train, work_folder


# ---- --preview-every 0 ---------------------------------------------------------------------------------

def test_preview_every_0_writes_no_preview(tmp_path):
    """The help says 0 disables previews: not even the last step gets one."""
    config = load_config(None, {"weights": "random", "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1"})
    settings = TrainSettings(steps=2, batch_size=2, crop_size=32, width=8, blocks=1, checkpoint_every=0,
                             preview_every=0)
    output = tmp_path / "m.safetensors"
    result = train(make_image(tmp_path / "style.png", size=(40, 40)), photos(tmp_path / "photos", 4), output,
                   config, settings)
    assert result.previews == [] and output.is_file()
    assert not list(work_folder(output).glob("preview_*.png")) if work_folder(output).exists() else True


# ---- help text -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "apply", "export", "ui", "batch", "video"])
def test_help_labels_values_as_the_other_commands_do(runner, command):
    """No click-internal labels (INTEGER RANGE, FLOAT RANGE, [a|b] choices) in any command's options."""
    result = runner.invoke(nst, [command, "--help"])
    assert result.exit_code == 0
    options = result.output[result.output.index("Options:"):]
    assert "RANGE" not in options and not re.search(r"^\s+-[-\w, ]+ \[[\w|]+\]", options, flags=re.M), options


def test_train_help_shows_the_style_weight_it_uses(runner):
    """nst train's --style-weight shows train's own default, and its examples stay near it."""
    result = runner.invoke(nst, ["train", "--help"])
    text = " ".join(result.output.split())
    from nstcli.cli.fast import TRAIN_STYLE_WEIGHT

    assert f"--style-weight X Weight beta of the style loss. [default: {TRAIN_STYLE_WEIGHT:g}" in text.replace(
        f"{TRAIN_STYLE_WEIGHT:.1f}", f"{TRAIN_STYLE_WEIGHT:g}")
    weights = [float(w) for w in re.findall(r"--style-weight (\d+(?:\.\d+)?)", result.output)]
    assert all(TRAIN_STYLE_WEIGHT / 10 <= w <= TRAIN_STYLE_WEIGHT * 10 for w in weights), weights


# ---- result paths under a progress bar -----------------------------------------------------------------------

def rendered_lines(text: str) -> list[str]:
    """What a terminal shows for `text` (stdout and stderr interleaved): '\\r' returns to the line's start."""
    lines = []
    for raw in text.split("\n"):
        line: list[str] = []
        column = 0
        for char in raw:
            if char == "\r":
                column = 0
                continue
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
        lines.append("".join(line).rstrip())
    return lines


@pytest.mark.parametrize("command", ["batch", "apply"])
def test_result_paths_are_printed_on_their_own_line_under_the_bar(tmp_path, command):
    """Each output path is a line of its own on the terminal, not the end of the bar's line."""
    from click.testing import CliRunner

    data = photos(tmp_path / "photos", 2, size=(40, 32))
    out = tmp_path / "out"
    if command == "batch":
        style = make_image(tmp_path / "style.png", size=(40, 40))
        args = ["batch", str(data), "--style", str(style), "-o", str(out), "--weights", "random", "--size", "32",
                "--steps", "1", "--checkpoint-every", "0"]
    else:
        args = ["apply", str(tiny_model(tmp_path / "m.safetensors")), str(data), "-o", str(out)]
    result = CliRunner().invoke(nst, args)  # the interleaved output, as a terminal shows both streams
    assert result.exit_code == 0, result.output
    written = result.stdout.split()
    assert len(written) == 2
    shown = rendered_lines(result.output)
    for path in written:
        assert path in shown, shown


# ---- a missing extra ---------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    tiny_model(tmp_path / "m.safetensors")
    make_image(tmp_path / "style.png", size=(40, 40))
    make_image(tmp_path / "c.png")
    return tmp_path


@pytest.mark.parametrize("module, extra, args", [
    ("onnx", "export", ["export", "{d}/m.safetensors", "-o", "{d}/m.onnx"]),
    ("streamlit", "ui", ["ui", "--port", "8599"]),
    ("av", "video", ["video", "{d}/clip.mp4", "{d}/style.png", "-o", "{d}/out.mp4", "--weights", "random"]),
    ("cv2", "video", ["video", "{d}/frames", "--model", "{d}/m.safetensors", "-o", "{d}/out/"]),
])
def test_a_missing_extra_exits_1_with_an_install_command_that_works_here(runner, files, monkeypatch, module, extra,
                                                                          args):
    """Every command needing an extra that is not installed: exit 1, and the pip command for this install."""
    (files / "frames").mkdir()
    make_image(files / "frames" / "f1.png")
    (files / "clip.mp4").write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    result = runner.invoke(nst, [arg.format(d=files) for arg in args])
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert line.endswith(f", which is not installed; install it with: {extras.install_command(extra)}"), line


class FakeDistribution:
    def __init__(self, direct_url):
        self.direct_url = direct_url

    def read_text(self, name):
        return json.dumps(self.direct_url) if name == "direct_url.json" and self.direct_url else None


@pytest.mark.parametrize("direct_url, command", [
    (None, "pip install 'nstcli[ui]'"),  # from an index
    ({"url": "file:///home/me/nstcli", "dir_info": {"editable": True}}, "pip install -e '/home/me/nstcli[ui]'"),
    ({"url": "file:///home/me/nst%20cli", "dir_info": {}}, "pip install '/home/me/nst cli[ui]'"),
    ({"url": "https://files.example/nstcli-1.0.whl", "archive_info": {}}, "pip install 'nstcli[ui]'"),
])
def test_the_install_command_fits_where_nstcli_came_from(monkeypatch, direct_url, command):
    """From an index: nstcli[ui]; from a checkout (editable or not): that folder's path with [ui]."""
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: FakeDistribution(direct_url))
    assert extras.install_command("ui") == command


# ---- --preserve-color given alone ---------------------------------------------------------------------------

@pytest.mark.parametrize("typed, expected", [
    (["--preserve-color", "--steps", "7"], "luminance"),
    (["--steps", "7", "--preserve-color"], "luminance"),
    (["--preserve-color", "histogram", "--steps", "7"], "histogram"),
    (["--steps", "7"], "none"),
])
def test_preserve_color_given_alone_means_luminance(runner, tmp_path, monkeypatch, typed, expected):
    """--preserve-color without a value is luminance; it never takes the next flag as its value."""
    seen = {}

    def fake_stylize(content, styles, output, config, **kwargs):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(api, "stylize", fake_stylize)
    content, style = make_image(tmp_path / "c.png"), make_image(tmp_path / "s.png")
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *typed])
    assert result.exit_code == 0, result.output
    assert seen["config"].preserve_color == expected and seen["config"].steps == 7
