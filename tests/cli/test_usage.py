"""The command line as typed: usage errors in one line, help that shows what each command honours and
its defaults, options that contradict each other, and answers that come before torch is imported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clips import frame_folder
from helpers import SRC, VIDEO_FAST, error_line, make_image, no_network, video
from nstcli.cli.main import nst
from nstcli import api


@pytest.mark.parametrize("args, message", [
    (["stylize", "c.png", "s.png"], "Error: Missing option '-o' / '--output'. (see 'nst stylize --help')"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--frobnicate", "3"],
     "Error: No such option '--frobnicate'. (see 'nst stylize --help')"),
    (["batch", "in", "--style", "s.png", "-o", "out", "--format", "gif"],
     "Error: Invalid value for '--format': 'gif' is not one of 'png', 'jpg', 'jpeg', 'webp', 'tif', 'tiff'. "
     "(see 'nst batch --help')"),
    (["ui", "--port", "0"], "Error: Invalid value for '--port': 0 is not in the range 1<=x<=65535. "
                            "(see 'nst ui --help')"),
    # click suggests every close name: `nst styles` (the built-in styles) is one too
    (["stylise"], "Error: No such command 'stylise'. (Did you mean one of: 'styles', 'stylize'?) (see 'nst --help')"),
    (["--bogus"], "Error: No such option '--bogus'. (see 'nst --help')"),
    (["reconstruct", "content", "c.png", "-o", "o.png", "--init", "noise"],
     "Error: --init does not apply to 'nst reconstruct content' (see 'nst reconstruct content --help')"),
    (["batch", "in", "--style", "s.png", "-o", "out", "--style-blend", "1"],
     "Error: --style-blend does not apply to 'nst batch' (see 'nst batch --help')"),
])
def test_usage_errors_are_one_line(runner, args, message):
    """It prints a usage error as exactly one Error: line, exit 2, without click's usage lines."""
    result = runner.invoke(nst, args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_stylize_help_shows_defaults_and_every_output_extension(runner):
    """It shows the defaults of size, steps, start size and checkpoint interval, and .tiff for -o."""
    text = " ".join(runner.invoke(nst, ["stylize", "--help"]).stdout.split())
    text = text[text.index("Options:"):]  # past the description, which mentions --checkpoint-every too
    for flag, default in [("--size", "384"), ("--steps", "150"), ("--start-size", "192"),
                          ("--checkpoint-every", "100"), ("--optimizer", "lbfgs")]:
        after = text[text.index(f"{flag} "):]
        assert f"[default: {default}]" in after[: after.index(" --", 3)], flag
    assert "Output image (.png .jpg .jpeg .webp .tif .tiff)." in text


def _options(runner, *command) -> set[str]:
    lines = runner.invoke(nst, [*command, "--help"]).stdout.splitlines()
    return {word.rstrip(",") for line in lines for word in line.split()[:3] if word.startswith("--")}


def test_each_command_lists_only_what_it_honours(runner):
    """It lists in reconstruct's help only the options reconstruct uses, and no --style-blend in batch's."""
    for kind in ("content", "style"):
        shown = _options(runner, "reconstruct", kind)
        assert {"--size", "--steps", "--optimizer", "--adam-betas", "--lr", "--seed", "--device", "--weights",
                "--pooling", "--padding", "--checkpoint-every", "--all", "--quiet", "--json", "--config"} <= shown
        assert not shown & {"--content-layers", "--style-layers", "--init", "--start-size", "--style-blend",
                            "--content-weight", "--style-weight", "--preserve-color", "--contact-sheet",
                            "--first-steps", "--average", "--style-loss", "--tv-stencil", "--scales-from"}
    batch = _options(runner, "batch")
    assert "--style-blend" not in batch and {"--style-scale", "--quiet", "--size"} <= batch
    assert {"--style-blend", "--init", "--no-clobber", "--quiet"} <= _options(runner, "stylize")


@pytest.mark.parametrize("args, message", [
    (["reconstruct", "content", "{img}", "-o", "{out}", "--layer", "conv1_1", "--all"],
     "Error: --layer and --all contradict each other: --all runs the whole figure (every layer); give one of them"),
    (["reconstruct", "style", "{img}", "-o", "{out}", "--layers", "conv1_1", "--all"],
     "Error: --layers and --all contradict each other: --all runs the whole figure (every growing set of "
     "layers); give one of them"),
    (["reconstruct", "style", "{img}", "-o", "{out}", "--all", "--checkpoint-every", "5"],
     "Error: --checkpoint-every does not apply with --all: the sheet is made of several runs, none of which is "
     "checkpointed; drop one of them"),
    (["reconstruct", "style", "{img}", "-o", "{out}", "--layers", "relu9_9"],
     "Error: --layers has unknown VGG19 layer 'relu9_9'; did you mean 'relu5_4'? valid layers: conv1_1, "),
    (["batch", "{img}", "--style", "{img}", "-o", "{out}", "--quiet", "--progress", "steps"],
     "Error: --quiet and --progress steps contradict each other; give one of them"),
    (["stylize", "{img}", "{img}", "-o", "{out}", "--contact-sheet", "--checkpoint-every", "0"],
     "Error: 'contact_sheet' shows the checkpoints, but 'checkpoint_every' is 0; set checkpoint_every above 0 "
     "or drop contact_sheet"),
])
def test_contradictory_options_are_refused(runner, content, tmp_path, args, message):
    """It refuses options that contradict each other, exit 2, naming both."""
    args = [a.format(img=content, out=tmp_path / "o.png") for a in args]
    result = runner.invoke(nst, args)
    assert result.exit_code == 2
    assert error_line(result).startswith(message)
    assert not (tmp_path / "o.png").exists()


def _torch_loaded_after(args: list[str], cwd: Path) -> tuple[int, str, bool]:
    code = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from nstcli.cli.main import nst
        result = CliRunner().invoke(nst, {args!r})
        print(result.exit_code, 'torch' in sys.modules)
        print(result.stderr.strip())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    head, _, stderr = done.stdout.partition("\n")
    code_text, loaded = head.split()
    return int(code_text), stderr.strip(), loaded == "True"


@pytest.mark.e2e
@pytest.mark.parametrize("args, exit_code, start", [
    (["stylize", "missing.png", "s.png", "-o", "o.png"], 1, "Error: image missing.png does not exist"),
    (["stylize", "c.png", "s.png", "-o", "o.gif"], 2, "Error: output o.gif has unknown extension '.gif'"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--steps", "-1"], 2, "Error: --steps must be at least 0"),
    (["stylize", "c.png", "s.png", "-o", "c.png"], 2, "Error: output c.png is also an input"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--weights", "nope.pth"], 1, "Error: weights file nope.pth does"),
    (["reconstruct", "content", "missing.png", "-o", "o.png"], 1, "Error: image missing.png does not exist"),
    (["batch", "missing", "--style", "s.png", "-o", "out"], 1, "Error: input missing does not exist"),
    (["weights", "path", "torchvision"], 1, "Error: no weights at "),
    (["weights", "import", "c.png"], 1, "Error: c.png is not a weights file (it is a PNG image)"),
])
def test_checks_that_need_no_network_come_before_torch(tmp_path, args, exit_code, start):
    """It answers path and option mistakes without importing torch (what made them take seconds)."""
    make_image(tmp_path / "c.png")
    make_image(tmp_path / "s.png", seed=2)
    code, stderr, loaded = _torch_loaded_after(args, tmp_path)
    assert (code, stderr[: len(start)]) == (exit_code, start)
    assert not loaded


@pytest.mark.parametrize("command", [["video", "clip.mp4", "style.png", "-o", "out.mp4", "--frame-steps"],
                                     ["video", "clip.mp4", "style.png", "-o", "out.mp4", "--fps"],
                                     ["ui", "--port"]])
def test_click_options_quote_a_huge_value_short(runner, command):
    """It refuses an integer of 5000 digits in any click option with exit 2 and a short quote of it."""
    result = runner.invoke(nst, [*command, "9" * 5000])
    assert result.exit_code == 2
    line = error_line(result)
    assert f"{'9' * 30 + '...'!r} (5000 characters)" in line and len(line) < 250


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
    from nstcli.config.commands import TRAIN_CONFIG_DEFAULTS

    TRAIN_STYLE_WEIGHT = TRAIN_CONFIG_DEFAULTS["style_weight"]

    assert f"--style-weight X Weight beta of the style loss. [default: {TRAIN_STYLE_WEIGHT:g}" in text.replace(
        f"{TRAIN_STYLE_WEIGHT:.1f}", f"{TRAIN_STYLE_WEIGHT:g}")
    weights = [float(w) for w in re.findall(r"--style-weight (\d+(?:\.\d+)?)", result.output)]
    assert all(TRAIN_STYLE_WEIGHT / 10 <= w <= TRAIN_STYLE_WEIGHT * 10 for w in weights), weights


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


@pytest.mark.parametrize("typed", ["nan", "inf"])
def test_temporal_weight_nan_is_a_usage_error(runner, style, tmp_path, monkeypatch, typed):
    """It refuses --temporal-weight nan or inf at the command line (exit 2), as config floats are."""
    no_network(monkeypatch)
    result = video(runner, frame_folder(tmp_path), style, "-o", tmp_path / "out.mp4", *VIDEO_FAST,
                   "--temporal-weight", typed)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: Invalid value for '--temporal-weight': {typed!r} is not a finite number "
                                  "of at least 0 (see 'nst video --help')")
