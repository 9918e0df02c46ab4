"""Coarse-to-fine, style blending and scale, colour preservation, reconstructions, progress pictures."""

import json

import pytest
import torch
from PIL import Image

from nstcli.stylize import single  # noqa: E402
from nstcli import api
from nstcli.image import colour
from nstcli.image.io import open_image, pil_to_tensor, resize_longest
from nstcli.stylize.reconstruct import psnr
from nstcli.stylize import styles as styles_module
from nstcli.reports import Callback
from nstcli.cli.main import nst
from nstcli.config.fields import Config, load_config
from nstcli.stylize.sizes import scale_sizes, steps_per_scale

from helpers import FAST, error_line, make_image

BASE = dict(weights="random", checkpoint_every=0)


class Sizes(Callback):
    def __init__(self):
        self.seen = []

    def on_step(self, report):
        if not self.seen or self.seen[-1] != (report.scale, report.size):
            self.seen.append((report.scale, report.size))


def test_coarse_to_fine_scales(content, style):
    """It runs every scale from start_size up, each smaller than the next, ending at size."""
    sizes = Sizes()
    config = Config(size=64, start_size=16, scale_factor=2.0, steps=2, **BASE)
    assert scale_sizes(config) == [16, 32, 64]
    result = api.stylize(content, style, config=config, callbacks=[sizes])
    # 16 px would make the short side 11 px, below the 16 px relu5_1 needs: that scale is skipped
    assert [size for _, size in sizes.seen] == [(21, 32), (43, 64)]
    assert result.image.shape[-2:] == (43, 64)
    assert result.steps == 4 and [row["step"] for row in result.log] == [1, 2, 3, 4]
    assert result.sizes == [(21, 32), (43, 64)]


def test_defaults_are_two_scales_and_none_gives_one():
    """The defaults halve the size down to no less than 192 px, run at most 150 steps at that first scale,
    then steps x 256 / side at each larger one (100 at 384 px; 75 and 38 at 512 and 1024 px); `none` or a
    large start is one scale."""
    assert (Config().steps, scale_sizes(Config())) == (150, [192, 384])
    assert steps_per_scale(Config(), [192, 384]) == [150, 100]
    assert scale_sizes(Config(size=512)) == [256, 512]
    assert scale_sizes(Config(size=1024)) == [256, 512, 1024]
    assert scale_sizes(Config(size=3620)) == [226, 452, 905, 1810, 3620]
    assert steps_per_scale(Config(size=1024), [256, 512, 1024]) == [150, 75, 38]
    assert scale_sizes(Config(size=128)) == [128]
    assert scale_sizes(Config(size=192)) == [192]
    assert scale_sizes(load_config(None, {"start_size": "none"})) == [384]  # as --start-size none


def test_coarse_to_fine_cli_json(runner, content, style, tmp_path):
    """It reports every scale in --json and numbers checkpoints across scales."""
    out = tmp_path / "o.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--size", "48", "--start-size", "24", "--steps", "2", "--checkpoint-every",
                                 "2", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scales"] == [[16, 24], [32, 48]]
    assert [p.rsplit("/", 1)[1] for p in data["checkpoints"]] == ["step_0002.png", "step_0004.png"]
    assert Image.open(tmp_path / "o_checkpoints" / "step_0002.png").size == (24, 16)
    assert Image.open(out).size == (48, 32)


def test_blend_one_zero_equals_single_style(content, style, tmp_path):
    """It gives exactly the single-style result for blend weights 1,0."""
    other = make_image(tmp_path / "other.png", size=(40, 40), seed=9)
    config = Config(size=32, steps=4, **BASE)
    single = api.stylize(content, style, config=config).image
    blended = api.stylize(content, [style, other], config=config.replace(style_blend=(1.0, 0.0))).image
    mixed = api.stylize(content, [style, other], config=config.replace(style_blend=(0.5, 0.5))).image
    assert torch.equal(single, blended)
    assert not torch.equal(single, mixed)


def test_blend_count_must_match(runner, content, style, tmp_path):
    """It exits 2 when the number of blend weights differs from the number of styles."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--style-blend", "0.7,0.3"])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: 'style_blend' has 2 weights for 1 style images; "
                                  "give one weight per style image")


def test_style_scale_sizes_style_image(content, style, monkeypatch):
    """It resizes the style image to style_scale times the output size before taking its Grams."""
    seen = []
    real = styles_module.style_term_for

    def spy(config, network, styles, blend):
        seen.extend(tuple(s.shape[-2:]) for s in styles)
        return real(config, network, styles, blend)

    monkeypatch.setattr(styles_module, "style_term_for", spy)
    large = make_image(content.parent / "large_style.png", size=(80, 80), seed=3)
    api.stylize(content, large, config=Config(size=32, steps=1, style_scale=2.0, **BASE))
    assert seen == [(64, 64)]
    # never past the style image's own 40 px (tests/stylize/test_large_sizes.py has the rule itself)
    seen.clear()
    api.stylize(content, style, config=Config(size=32, steps=1, style_scale=2.0, **BASE))
    assert seen == [(40, 40)]


def chroma(image):
    return colour.rgb_to_yiq(image)[:, 1:]


def test_preserve_color_luminance_keeps_content_chroma(content, tmp_path):
    """It keeps the content's chroma (I and Q) while the style changes the luminance."""
    red_style = tmp_path / "red.png"
    Image.new("RGB", (40, 40), (230, 20, 20)).save(red_style)
    noisy = make_image(tmp_path / "s.png", size=(40, 40), seed=4)
    config = Config(size=32, steps=10, preserve_color="luminance", **BASE)
    out = api.stylize(content, [noisy, red_style], config=config).image
    plain = api.stylize(content, [noisy, red_style], config=config.replace(preserve_color="none")).image
    target = pil_to_tensor(resize_longest(open_image(content), 32))
    # rounding to 8 bits and clamping to [0, 1] allow small differences only
    assert (chroma(out) - chroma(target)).abs().mean() < 0.02
    assert (chroma(plain) - chroma(target)).abs().mean() > 0.04


def test_histogram_matching_moves_style_colours_to_content():
    """It gives the recoloured style the content's colour mean and covariance."""
    torch.manual_seed(0)
    content = torch.rand(1, 3, 20, 20) * 0.5 + 0.25
    style = (torch.rand(1, 3, 20, 20) * torch.tensor([0.3, 0.1, 0.05]).view(1, 3, 1, 1)).clamp(0, 1)
    matched = colour.match_histogram(style, content)
    mean_m, cov_m = colour._mean_cov(matched)
    mean_c, cov_c = colour._mean_cov(content)
    assert torch.allclose(mean_m, mean_c, atol=0.02)
    assert torch.allclose(cov_m, cov_c, atol=0.01)


def test_preserve_color_histogram_runs(runner, content, style, tmp_path):
    """It runs with --preserve-color histogram from the CLI."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--preserve-color", "histogram"])
    assert result.exit_code == 0, result.output


def test_layers_weights_tv_pooling_from_cli(runner, content, style, tmp_path):
    """It accepts layers, per-layer weights, tv weight and pooling as flags."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--content-layers", "conv4_2", "--style-layers", "relu1_1,relu2_1",
                                 "--style-layer-weights", "2,0.5", "--tv-weight", "0.1", "--pooling", "avg",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"]["tv"] > 0


def test_reconstruct_content_conv1_1_is_close(content):
    """It rebuilds an image from noise using conv1_1 content alone, close to the input."""
    config = Config(size=32, steps=60, **BASE)
    result = api.reconstruct("content", content, layers=["conv1_1"], config=config)
    target = pil_to_tensor(resize_longest(open_image(content), 32))
    noise = torch.rand(target.shape, generator=torch.Generator().manual_seed(0))
    assert psnr(result.image, target) > 25
    assert psnr(noise, target) < 10


def test_reconstruct_style_lowers_style_loss(content):
    """It optimises only the style loss over the chosen layers."""
    config = Config(size=32, steps=15, **BASE)
    result = api.reconstruct("style", content, layers=["conv1_1", "conv2_1"], config=config)
    assert result.log[-1]["style"] < 0.5 * result.log[0]["style"]
    assert all("content" not in row for row in result.log)  # no content term at all


@pytest.mark.parametrize("kind, cells", [("content", 6), ("style", 6)])
def test_reconstruct_all_writes_labelled_sheet(runner, content, tmp_path, kind, cells):
    """It writes one sheet with the input and every layer (or subset) side by side."""
    out = tmp_path / f"{kind}_sheet.png"  # not content.png: that is the input
    result = runner.invoke(nst, ["reconstruct", kind, str(content), "-o", str(out), "--all", "--weights",
                                 "random", "--size", "32", "--steps", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    width, height = Image.open(out).size
    assert width == 4 + cells * (32 + 4) and height > 21


def test_reconstruct_content_needs_one_layer(runner, content, tmp_path):
    """It exits 2 when content reconstruction is given several layers."""
    result = runner.invoke(nst, ["reconstruct", "content", str(content), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--layer", "conv1_1,conv2_1"])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --layer takes one layer: content reconstruction matches a single "
                                  "layer's feature maps (or give --all)")


def test_contact_sheet_and_loss_curve(runner, content, style, tmp_path):
    """It writes the checkpoint contact sheet and the loss curve beside the output."""
    out = tmp_path / "o.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--size", "32", "--steps", "4", "--checkpoint-every", "2", "--quiet",
                                 "--contact-sheet", "--loss-curve"])
    assert result.exit_code == 0, result.output
    sheet = Image.open(tmp_path / "o_progress.png")
    assert sheet.size == (4 + 2 * (32 + 4), 4 + 21 + 18 + 4)
    curve = Image.open(tmp_path / "o_loss.png")
    assert curve.size == (640, 360)
    # the curve is drawn: some pixels carry the style colour
    assert (214, 39, 40) in {curve.getpixel((x, y)) for x in range(60, 628) for y in range(12, 326, 2)}
