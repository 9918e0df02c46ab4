"""The CLI's progress bar: drawn at the first step, estimating time by each scale's cost."""

import io

import pytest
import torch

from fastnets import photos, tiny_model
from helpers import error_line, make_image
from nstcli.stylize import single
from nstcli.cli.main import nst
from nstcli.optim.engine import StepReport
from nstcli.errors import WeightsError
from nstcli.cli.progress import ProgressBar


def report(step, total, scale, size):
    return StepReport(step=step, total=total, loss=1.0, terms={"content": 0.5, "style": 0.5},
                      image=torch.zeros(1, 3, *size), scale=scale, size=size)


def test_bar_weighs_steps_by_their_scale(monkeypatch):
    """It counts a step at half the side as a quarter of the work, so the estimate is not off by two."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    bar = ProgressBar()
    bar.on_schedule([(10, (96, 128)), (10, (192, 256))])
    bar.on_start(20)
    assert bar.bar is None  # nothing drawn before the first step
    for step in range(1, 11):
        bar.on_step(report(step, 20, 0, (96, 128)))
    assert bar.bar.total == 12.5 and bar.bar.n == 2.5  # 10 steps at 1/4 of the work, then 10 at 1
    assert "scale 1/2 128x96" in bar.bar.postfix and "content=0.5" in bar.bar.postfix
    bar.on_step(report(11, 20, 1, (192, 256)))
    assert bar.bar.n == 3.5 and "scale 2/2 256x192" in bar.bar.postfix
    bar.on_end()


def test_no_bar_before_the_network_is_ready(runner, content, style, tmp_path, monkeypatch):
    """It draws nothing when the weights fail to load: the error line is all there is."""

    def fails(*args, **kwargs):
        raise WeightsError("could not download the VGG19 weights")

    monkeypatch.setattr(single, "load_network", fails)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--size", "32", "--steps", "2"])
    assert result.exit_code == 1
    assert error_line(result) == "Error: could not download the VGG19 weights"
    assert "%" not in result.stderr and "stylize" not in result.stderr.replace("Error:", "")


def test_reconstruct_draws_no_bar_before_a_weights_error(runner, content, tmp_path, monkeypatch):
    """It draws no progress bars before a download error in nst reconstruct either."""
    from nstcli.stylize import reconstruct

    def fails(*args, **kwargs):
        raise WeightsError("could not download the VGG19 weights")

    monkeypatch.setattr(reconstruct, "load_network", fails)
    result = runner.invoke(nst, ["reconstruct", "style", str(content), "-o", str(tmp_path / "o.png"),
                                 "--size", "32", "--steps", "2"])
    assert result.exit_code == 1
    assert error_line(result) == "Error: could not download the VGG19 weights"
    assert "%" not in result.stderr


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
