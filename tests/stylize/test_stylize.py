"""End to end through the CLI and the API with an untrained VGG19."""

import json

import pytest
from PIL import Image

from helpers import FAST, error_line, make_image, no_network
from nstcli import api
from nstcli.optim import engine
from nstcli.reports import Callback
from nstcli.cli.main import nst
from nstcli.config.fields import Config
from nstcli.network.features import VGGFeatures
from nstcli.terms import content as content_module
from nstcli.terms import gram as gram_module


def test_writes_output_with_content_aspect_and_checkpoints(runner, content, style, tmp_path):
    """It writes the output at --size with the content's aspect ratio, and checkpoints every 100 steps."""
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--steps", "200", "--size", "24", "--stop-tolerance", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    assert Image.open(out).size == (24, 16)  # content is 48x32
    checkpoints = sorted(p.name for p in (tmp_path / "out_checkpoints").iterdir())
    assert checkpoints == ["step_0100.png", "step_0200.png"]
    assert Image.open(tmp_path / "out_checkpoints" / "step_0100.png").size == (24, 16)


def test_json_output(runner, content, style, tmp_path):
    """It prints one JSON object with the result on stdout and nothing else."""
    out = tmp_path / "out.jpg"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out)
    assert data["steps"] == 3
    assert data["weights"] == "random" and data["device"] == "cpu"
    assert set(data["loss"]) == {"loss", "content", "style"}  # the terms this run has: no tv weight, no tv
    assert (data["width"], data["height"]) == (32, 21)
    assert Image.open(out).format == "JPEG"


def test_random_weights_warn_on_stderr(runner, content, style, tmp_path):
    """It warns on stderr, never stdout, when the network is untrained."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert result.exit_code == 0
    assert "Warning: using an untrained VGG19" in result.stderr
    assert "Warning" not in result.stdout


def test_progress_bar_and_quiet(runner, content, style, tmp_path):
    """It shows step, total and loss terms on stderr, and nothing with --quiet."""
    args = ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), "--weights", "random",
            "--size", "32", "--steps", "2", "--checkpoint-every", "0"]
    loud = runner.invoke(nst, args)
    assert "2/2" in loud.stderr and "content=" in loud.stderr and "style=" in loud.stderr
    quiet = runner.invoke(nst, args + ["--quiet"])
    assert "2/2" not in quiet.stderr


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("init", ["content", "noise"])
def test_loss_goes_down(content, style, optimizer, init):
    """It lowers the total loss with either optimiser from either start."""
    config = Config(weights="random", size=32, steps=25, optimizer=optimizer, init=init, checkpoint_every=0)
    result = api.stylize(content, style, config=config)
    first, last = result.log[0]["loss"], result.log[-1]["loss"]
    assert last < 0.5 * first


def test_same_seed_same_result(content, style):
    """It reproduces a run exactly with the same seed on the same device."""
    config = Config(weights="random", size=32, steps=5, init="noise", seed=3, checkpoint_every=0)
    a = api.stylize(content, style, config=config).image
    b = api.stylize(content, style, config=config).image
    c = api.stylize(content, style, config=config.replace(seed=4)).image
    assert (a == b).all()
    assert not (a == c).all()


def test_init_style_uses_style_image(content, style):
    """It can start from the style image resized to the content's shape."""
    config = Config(weights="random", size=32, steps=0, init="style", checkpoint_every=0)
    result = api.stylize(content, style, config=config)
    assert result.image.shape[-2:] == (21, 32)


def test_targets_computed_once(content, style, monkeypatch, fresh_network_cache):
    """It runs the network once per target image and once per step, not more."""
    calls = []
    original = VGGFeatures.forward

    def counting(self, image):
        calls.append(image.requires_grad)
        return original(self, image)

    monkeypatch.setattr(VGGFeatures, "forward", counting)
    config = Config(weights="random", size=32, steps=6, checkpoint_every=0)
    api.stylize(content, [style, style], config=config)
    # 1 content + 2 styles without gradients, then 6 steps with them
    assert calls.count(False) == 3
    assert calls.count(True) == 6


def test_network_is_frozen(content, style):
    """It never computes gradients for the network's weights."""
    config = Config(weights="random", size=32, steps=2, checkpoint_every=0)
    api.stylize(content, style, config=config)
    network = api.load_network(config)
    assert all(not p.requires_grad and p.grad is None for p in network.parameters())


def test_nan_loss_stops_and_keeps_checkpoint(runner, content, style, tmp_path, monkeypatch):
    """It stops on a non-finite loss with exit 1, keeps the last checkpoint and writes no output."""
    real = content_module.content_loss
    count = {"n": 0}

    def breaks_at_step_5(features, target):
        count["n"] += 1
        value = real(features, target)
        return value * float("nan") if count["n"] >= 5 else value

    monkeypatch.setattr(content_module, "content_loss", breaks_at_step_5)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--size", "32", "--steps", "10", "--checkpoint-every", "2", "--quiet"])
    assert result.exit_code == 1
    checkpoint = tmp_path / "out_checkpoints" / "step_0004.png"
    assert error_line(result) == ("Error: the loss became nan at step 5; lower --lr or the loss weights; "
                                  f"the last good checkpoint is {checkpoint}")
    assert checkpoint.exists()
    assert not out.exists()


def test_interrupt_saves_current_image(runner, content, style, tmp_path):
    """It saves the current image to the output and exits 130 on Ctrl-C."""

    class CtrlC(Callback):
        def on_step(self, report):
            if report.step == 3:
                raise KeyboardInterrupt

    out = tmp_path / "out.png"
    from nstcli.cli import main as cli

    original = cli.ProgressBar if hasattr(cli, "ProgressBar") else None
    import nstcli.cli.progress as progress_module

    real_bar = progress_module.ProgressBar
    progress_module.ProgressBar = lambda *a, **k: CtrlC()
    try:
        result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                     "--size", "32", "--steps", "10", "--checkpoint-every", "0"])
    finally:
        progress_module.ProgressBar = real_bar
    assert original is None
    assert result.exit_code == 130
    assert error_line(result) == f"Error: interrupted at step 3; saved the current image to {out}"
    assert Image.open(out).size == (32, 21)


def test_unknown_output_extension_refused_before_work(runner, content, style, tmp_path, monkeypatch):
    """It refuses an unknown output extension with exit 2 before loading anything."""
    no_network(monkeypatch)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.gif"), *FAST])
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: output {tmp_path / 'out.gif'} has unknown extension '.gif'; "
                                  "use one of .png, .jpg, .jpeg, .webp, .tif, .tiff")


def test_missing_content_image(runner, style, tmp_path):
    """It exits 1 naming a missing input image."""
    missing = tmp_path / "nope.jpg"
    result = runner.invoke(nst, ["stylize", str(missing), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: image {missing} does not exist; check the path"
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("ext, fmt", [(".png", "PNG"), (".jpeg", "JPEG"), (".webp", "WEBP"), (".tif", "TIFF")])
def test_output_format_from_extension(runner, content, style, tmp_path, ext, fmt):
    """It picks the output format from the extension and leaves no temporary files."""
    out = tmp_path / "sub" / f"out{ext}"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert Image.open(out).format == fmt
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_version_and_help(runner):
    """It reports its version and shows examples in stylize --help."""
    from nstcli import __version__

    assert runner.invoke(nst, ["--version"]).stdout == f"nst, version {__version__}\n"
    help_text = runner.invoke(nst, ["stylize", "--help"]).stdout
    assert "Examples:" in help_text and "--style-weight" in help_text


@pytest.mark.e2e
def test_python_dash_m(content, style, tmp_path):
    """It runs as python -m nstcli."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "nstcli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("nst, version")


def test_too_small_for_deepest_layer(runner, tmp_path, style):
    """It refuses an image whose short side is below what the deepest layer needs."""
    thin = make_image(tmp_path / "thin.png", size=(200, 10), seed=5)
    result = runner.invoke(nst, ["stylize", str(thin), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert result.exit_code == 1
    assert "the layers used need at least 16 px on the short side" in error_line(result)


def test_lbfgs_divergence_restarts_from_best(content, style, monkeypatch):
    """It restarts L-BFGS from the best image when a step blows the loss up, and returns the best image."""
    real = gram_module.gram_style_loss
    calls = {"n": 0}

    def spikes_once(features, target):
        calls["n"] += 1
        value = real(features, target)
        # one evaluation (5 style layers per evaluation) reports a loss 1000x too high
        return value * 1000 if 21 <= calls["n"] <= 25 else value

    monkeypatch.setattr(gram_module, "gram_style_loss", spikes_once)
    made = []
    real_make = engine.make_optimizer
    monkeypatch.setattr(engine, "make_optimizer", lambda *a, **k: made.append(1) or real_make(*a, **k))
    config = Config(weights="random", size=32, steps=8, checkpoint_every=0)
    result = api.stylize(content, style, config=config)
    assert len(made) == 2  # the original optimiser and one restart
    losses = [row["loss"] for row in result.log]
    assert losses[4] > 100 * min(losses[:4])
    assert min(losses[5:]) < min(losses[:4])
