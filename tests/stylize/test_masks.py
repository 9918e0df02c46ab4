"""Spatial control: guided style terms, mask normalisation and resizing, errors, runs and batches."""

import json

import pytest
import torch
from PIL import Image

from helpers import FAST, error_line, half_masks, make_image, no_network
from nstcli.stylize.batch_plan import plan_batch
from nstcli.cli.main import nst
from nstcli.config.fields import Config
from nstcli.stylize.masks import SpatialControl, normalise
from nstcli.terms.guided import resize_mask
from nstcli.terms.gram import GramStyle, gram_matrix
from nstcli.terms.guided import GuidedGramStyle, guided_gram, mask_at_layer
from nstcli.terms.masked_content import MaskedContent


def second_style(tmp_path):
    return make_image(tmp_path / "style2.png", size=(40, 40), seed=7)


def stylize(runner, *args):
    return runner.invoke(nst, ["stylize", *map(str, args), *FAST])


# --- the guided term ----------------------------------------------------------------------------------


def test_guided_term_matches_a_hand_computation():
    """It is weight * share * w * 1/4 mean(G_m - A)^2 with G_m = sum m^2 f f^T / sum m^2, by loops."""
    torch.manual_seed(0)
    features = torch.randn(1, 3, 4, 5)
    mask = torch.rand(4, 5)
    mask[0, 0] = 0.0
    target = torch.randn(1, 3, 3)
    term = GuidedGramStyle({"relu1_1": target}, mask, {"relu1_1": 0.5}, weight=7.0)

    gram = torch.zeros(3, 3, dtype=torch.float64)
    mass = 0.0
    for y in range(4):
        for x in range(5):
            f = features[0, :, y, x].double()
            m = float(mask[y, x])
            gram += m * m * torch.outer(f, f)
            mass += m * m
    gram /= mass
    share = float(mask.double().mean())
    expected = 7.0 * share * 0.5 * 0.25 * ((gram - target[0].double()) ** 2).mean()

    value = term({"relu1_1": features}, torch.zeros(1, 3, 4, 5))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_fused_backward_is_autograds(channels_last):
    """It gives the gradient autograd gives for the plain formula, in either memory layout."""
    torch.manual_seed(2)
    base = torch.randn(1, 4, 5, 6, dtype=torch.float64)
    if channels_last:
        base = base.contiguous(memory_format=torch.channels_last)
    mask = torch.rand(5, 6, dtype=torch.float64)
    target = gram_matrix(torch.randn(1, 4, 3, 3, dtype=torch.float64))  # targets are Grams: symmetric
    fused_input = base.clone().requires_grad_(True)
    GuidedGramStyle({"relu1_1": target}, mask, {"relu1_1": 1.0}, 3.0)({"relu1_1": fused_input},
                                                                      torch.zeros(1)).backward()
    plain_input = base.clone().requires_grad_(True)
    (3.0 * float(mask.mean()) * 0.25 * torch.mean((guided_gram(plain_input, mask) - target) ** 2)).backward()
    assert torch.allclose(fused_input.grad, plain_input.grad, rtol=1e-9, atol=1e-12)


def test_an_all_white_mask_gives_the_plain_gram_term():
    """It equals GramStyle exactly when the mask covers the whole image."""
    torch.manual_seed(1)
    features = {"relu1_1": torch.randn(1, 4, 6, 6), "relu2_1": torch.randn(1, 5, 3, 3)}
    targets = {name: gram_matrix(torch.randn_like(f)) for name, f in features.items()}
    weights = {"relu1_1": 1.0, "relu2_1": 0.3}
    plain = GramStyle(targets, weights, 10.0)(features, torch.zeros(1, 3, 6, 6))
    guided = GuidedGramStyle(targets, torch.ones(6, 6), weights, 10.0)(features, torch.zeros(1, 3, 6, 6))
    assert guided.item() == pytest.approx(plain.item(), rel=1e-6)


def test_the_term_reads_nothing_outside_its_mask():
    """It gives no gradient to features where the mask is 0, and a nonzero one inside."""
    features = torch.randn(1, 3, 4, 4, requires_grad=True)
    mask = torch.zeros(4, 4)
    mask[:, :2] = 1.0
    term = GuidedGramStyle({"relu1_1": torch.zeros(1, 3, 3)}, mask, {"relu1_1": 1.0}, 1.0)
    term({"relu1_1": features}, torch.zeros(1, 3, 4, 4)).backward()
    assert torch.all(features.grad[..., 2:] == 0)
    assert torch.all(features.grad[..., :2].abs().sum(1) > 0)


def test_positions_outside_the_mask_are_not_computed():
    """It works on the mask's bounding box only, with the same value as on the whole map."""
    from nstcli.terms.guided import guided_style_loss

    features = torch.randn(1, 3, 8, 8)
    mask = torch.zeros(8, 8)
    mask[2:5, 1:4] = torch.rand(3, 3) + 0.1
    target = gram_matrix(torch.randn(1, 3, 4, 4))
    term = GuidedGramStyle({"relu1_1": target}, mask, {"relu1_1": 1.0}, 1.0)
    assert term.boxes["relu1_1"] == (2, 5, 1, 4)
    whole = float(mask.mean()) * guided_style_loss(features, mask, target)
    assert term({"relu1_1": features}, torch.zeros(1)).item() == pytest.approx(whole.item(), rel=1e-6)


def test_masked_region_targets_are_the_regions_statistics():
    """It takes a style's target from its masked region alone: the Gram of that crop's positions."""
    features = torch.randn(1, 3, 4, 6)
    mask = torch.zeros(4, 6)
    mask[:, 3:] = 1.0
    crop = features[..., 3:]
    assert torch.allclose(guided_gram(features, mask), gram_matrix(crop), atol=1e-6)


def test_a_masked_content_term_ignores_black_regions():
    """It is 0 when the image differs from the photo only where the content mask is black."""
    target = torch.zeros(1, 2, 4, 4)
    features = target.clone()
    features[..., :, 2:] = 3.0
    mask = torch.ones(4, 4)
    mask[:, 2:] = 0.0
    term = MaskedContent({"relu1_1": target}, mask, 2.0)
    assert term({"relu1_1": features}, torch.zeros(1, 3, 4, 4)).item() == 0.0
    # An all-white map is the plain content term: weight * 1/(2NM) sum (F - P)^2.
    full = MaskedContent({"relu1_1": target}, torch.ones(4, 4), 2.0)({"relu1_1": features}, torch.zeros(1))
    assert full.item() == pytest.approx(2.0 * 0.5 * (9.0 * 16) / 32)


def test_crop_gives_the_tiles_own_mask_or_none():
    """It crops the mask to a tile (layer masks of the tile's size) and drops a tile the style misses."""
    mask = torch.zeros(32, 32)
    mask[:, :16] = 1.0
    term = GuidedGramStyle({"relu2_1": torch.zeros(1, 3, 3)}, mask, {"relu2_1": 1.0}, 1.0)
    tile = term.crop(0, 8, 16, 16)
    assert tile.masks["relu2_1"].shape == (8, 8)
    assert tile.share == pytest.approx(0.5)
    assert term.crop(0, 16, 16, 16) is None


class FakeTile:
    """What tiles.py's Tile offers a term: its interior in pixels and that box at every layer."""

    def __init__(self, y0, y1, x0, x1):
        self.interior = (y0, y1, x0, x1)

    def cells(self, layer):
        from nstcli.terms.guided import pools_before

        factor = 2 ** pools_before(layer)
        y0, y1, x0, x1 = self.interior
        return y0 // factor, y1 // factor, x0 // factor, x1 // factor


def test_a_tiles_terms_cut_the_whole_images_layer_masks():
    """It gives a tile the whole image's layer masks at the tile's cells, and None off the style's region."""
    mask = torch.rand(32, 32)
    mask[:, 16:] = 0.0
    term = GuidedGramStyle({"relu2_1": torch.zeros(1, 3, 3), "relu3_1": torch.zeros(1, 3, 3)}, mask,
                           {"relu2_1": 1.0, "relu3_1": 1.0}, 1.0)
    tile = term.at(FakeTile(8, 24, 0, 16))
    assert torch.equal(tile.masks["relu2_1"], term.masks["relu2_1"][4:12, 0:8])
    assert torch.equal(tile.masks["relu3_1"], term.masks["relu3_1"][2:6, 0:4])
    assert term.at(FakeTile(0, 16, 16, 32)) is None
    content = MaskedContent({"relu2_1": torch.randn(1, 2, 16, 16)}, mask, 1.0)
    piece = content.at(FakeTile(8, 24, 0, 16))
    assert torch.equal(piece.targets["relu2_1"], content.targets["relu2_1"][..., 4:12, 0:8])
    assert torch.equal(piece.masks["relu2_1"], content.masks["relu2_1"][4:12, 0:8])


# --- masks at scales and layers ----------------------------------------------------------------------


def test_masks_are_normalised_over_the_styles():
    """It divides by the sum where masks overlap beyond 1 and keeps partial and empty pixels as they are."""
    a = torch.tensor([[1.0, 0.5, 0.2, 0.0]])
    b = torch.tensor([[1.0, 1.0, 0.3, 0.0]])
    na, nb = normalise([a, b])
    assert na[0].tolist() == pytest.approx([0.5, 1 / 3, 0.2, 0.0])
    assert nb[0].tolist() == pytest.approx([0.5, 2 / 3, 0.3, 0.0])
    assert ((na + nb) <= 1 + 1e-6).all()


def test_a_mask_reaches_each_layer_at_its_resolution():
    """It has exactly the shape of the network's feature map at every style layer, odd sizes included."""
    from nstcli.stylize.single_plan import load_network_for as load_network

    config = Config(weights="random")
    network = load_network(config, torch.device("cpu"))
    image = torch.rand(1, 3, 37, 53)
    features = network(image)
    mask = torch.rand(37, 53)
    for name in config.style_layers:
        assert mask_at_layer(mask, name).shape == features[name].shape[-2:], name
    # relu2_1 comes after one pooling: each value is the mean of a 2x2 block.
    assert mask_at_layer(mask, "relu2_1")[3, 5].item() == pytest.approx(mask[6:8, 10:12].mean().item())
    assert torch.equal(mask_at_layer(mask, "relu1_2"), mask)


def test_masks_resized_to_a_scale_keep_their_halves():
    """It resizes a half mask to the scale's size with the boundary where it was."""
    mask = torch.zeros(32, 48)
    mask[:, :24] = 1.0
    small = resize_mask(mask, (16, 24))
    assert small.shape == (16, 24)
    assert small[:, :11].min() == 1.0 and small[:, 13:].max() == 0.0


# --- the command line --------------------------------------------------------------------------------


def test_stylize_with_two_masks_writes_the_image(runner, content, style, tmp_path):
    """It runs two masked styles end to end and reports their guided terms under 'style'."""
    left, right = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-mask", left,
                     "--style-mask", right, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary["loss"]) == {"loss", "content", "style"}
    assert summary["loss"]["style"] > 0
    assert Image.open(out).size == (32, 21)


def test_each_style_lands_where_its_mask_is(runner, content, tmp_path):
    """It paints a red style on the left half and a blue one on the right, as the masks say."""
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (32, 32), (230, 20, 20)).save(red)
    Image.new("RGB", (32, 32), (20, 20, 230)).save(blue)
    left, right = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(red), str(blue), "-o", str(out), "--weights", "random",
                                 "--size", "32", "--steps", "30", "--quiet", "--checkpoint-every", "0",
                                 "--style-mask", str(left), "--style-mask", str(right)])
    assert result.exit_code == 0, result.stderr
    image = torch.tensor(list(Image.open(out).getdata()), dtype=torch.float32).view(21, 32, 3)
    redness = image[..., 0] - image[..., 2]  # the photo's halves start between -20 and 20
    assert redness[:, :13].mean() > 100
    assert redness[:, 19:].mean() < -100


def test_masks_work_with_coarse_to_fine_colours_sources_and_content_masks(runner, content, style, tmp_path):
    """It resizes masks per scale and combines them with colour preservation, source masks and a content map."""
    left, right = half_masks(tmp_path / "m", soft=8)
    face = tmp_path / "face.png"
    Image.new("L", (48, 32), 128).save(face)
    source = tmp_path / "source.png"
    src = Image.new("L", (40, 40), 0)
    src.paste(255, (0, 0, 20, 40))
    src.save(source)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), str(second_style(tmp_path)), "-o", str(out),
                                 "--weights", "random", "--size", "64", "--start-size", "32", "--scale-factor", "2",
                                 "--steps", "2", "--quiet", "--checkpoint-every", "0", "--preserve-color",
                                 "histogram", "--style-mask", str(left), "--style-mask", str(right),
                                 "--style-source-mask", str(source), "--style-source-mask", str(source),
                                 "--content-mask", str(face), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["scales"] == [[21, 32], [43, 64]]
    assert Image.open(out).size == (64, 43)


def test_style_regions_with_listed_colours(runner, content, style, tmp_path):
    """It takes one label image with a colour per style, listed in style order."""
    labels = tmp_path / "labels.png"
    image = Image.new("RGB", (48, 32), (255, 0, 0))
    image.paste((0, 255, 0), (24, 0, 48, 32))
    image.save(labels)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-regions", labels,
                     "--region-colors", "#ff0000,lime")
    assert result.exit_code == 0, result.stderr
    assert out.exists()


def test_a_luminance_run_with_masks(runner, content, style, tmp_path):
    """It keeps the content's colours with masked styles too."""
    left, right = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-mask", left,
                     "--style-mask", right, "--preserve-color", "luminance")
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (32, 21)


def test_a_mask_of_another_shape_is_stretched_with_a_warning(runner, content, style, tmp_path):
    """It says when a mask's aspect ratio differs from the photo's, and still runs."""
    square = tmp_path / "square.png"
    Image.new("L", (40, 40), 255).save(square)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, "-o", out, "--style-mask", square)
    assert result.exit_code == 0, result.stderr
    assert (f"Warning: style mask {square} is 40x40 px but the content image is 48x32: it is stretched to "
            "the content's shape") in result.stderr.splitlines()
    assert out.exists()


# --- errors ------------------------------------------------------------------------------------------


def assert_error(result, code, message, out):
    assert result.exit_code == code, result.stderr
    assert error_line(result) == f"Error: {message}"
    assert not out.exists()


def test_mask_count_must_match_the_styles(runner, content, style, tmp_path):
    """It refuses two styles with one mask (exit 2)."""
    left, _ = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-mask", left)
    assert_error(result, 2, "2 style images but 1 --style-mask file; give one mask per style image, in the "
                            "same order", out)


def test_source_mask_count_must_match_the_styles(runner, content, style, tmp_path):
    """It refuses a source mask count that differs from the style count (exit 2)."""
    left, right = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-mask", left,
                     "--style-mask", right, "--style-source-mask", left)
    assert_error(result, 2, "2 style images but 1 --style-source-mask file; give one per style image, in "
                            "the same order", out)


def test_a_missing_mask_is_named(runner, content, style, tmp_path):
    """It names a mask that does not exist (exit 1)."""
    missing = tmp_path / "nope.png"
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, "-o", out, "--style-mask", missing)
    assert_error(result, 1, f"style mask {missing} does not exist; check the path", out)


def test_an_unreadable_mask_is_named(runner, content, style, tmp_path):
    """It names a content mask that is not an image (exit 1)."""
    bad = tmp_path / "face.png"
    bad.write_text("not a picture\n")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, "-o", out, "--content-mask", bad)
    assert_error(result, 1, f"content mask {bad} is not an image Pillow can read; give a PNG, JPEG, WebP, "
                            "TIFF, BMP or GIF file", out)


def test_a_black_mask_says_which_style(runner, content, style, tmp_path):
    """It refuses a mask that is black everywhere, naming the mask and its style (exit 1)."""
    left, _ = half_masks(tmp_path / "m")
    black = tmp_path / "black.png"
    Image.new("L", (48, 32), 0).save(black)
    out = tmp_path / "out.png"
    style2 = second_style(tmp_path)
    result = stylize(runner, content, style, style2, "-o", out, "--style-mask", left, "--style-mask", black)
    assert_error(result, 1, f"style mask {black} is black everywhere: style 2 (style2.png) would apply "
                            "nowhere; paint white where it applies (or leave the mask out)", out)


def test_labels_with_an_unlisted_colour(runner, content, style, tmp_path):
    """It names the label image, the stray colour and where it is (exit 1)."""
    labels = tmp_path / "labels.png"
    image = Image.new("RGB", (48, 32), (255, 0, 0))
    image.paste((0, 255, 0), (24, 0, 48, 32))
    image.paste((0, 0, 255), (40, 30, 42, 32))
    image.save(labels)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-regions", labels,
                     "--region-colors", "#ff0000,#00ff00")
    assert_error(result, 1, f"style regions {labels} has colour #0000ff (at x=40, y=30; 4 pixels off every "
                            "listed colour) that --region-colors does not list (#ff0000,#00ff00); list it or "
                            "repaint those pixels", out)


def test_a_listed_colour_missing_from_the_labels(runner, content, style, tmp_path):
    """It refuses a style whose colour appears nowhere in the labels (exit 1)."""
    labels = tmp_path / "labels.png"
    Image.new("RGB", (48, 32), (255, 0, 0)).save(labels)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-regions", labels,
                     "--region-colors", "red,#00ff00")
    assert_error(result, 1, f"style regions {labels} has no pixel of colour #00ff00: style 2 (style2.png) "
                            "would apply nowhere; paint its region or drop that style", out)


@pytest.mark.parametrize("colours, message", [
    ("#ff0000,#00ff00,#0000ff", "--region-colors lists 3 colours for 2 style images; give one colour per style "
                                "image, in the same order"),
    ("#ff0000,blurple", "--region-colors: 'blurple' is not a colour; give #rrggbb values or names, e.g. "
                        "--region-colors '#ff0000,#00ff00'"),
])
def test_region_colour_usage_errors(runner, content, style, tmp_path, colours, message):
    """It refuses colour lists that do not fit the styles (exit 2)."""
    labels = tmp_path / "labels.png"
    Image.new("RGB", (48, 32), (255, 0, 0)).save(labels)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-regions", labels,
                     "--region-colors", colours)
    assert_error(result, 2, message, out)


def test_colours_need_regions(runner, content, style, tmp_path):
    """It refuses --region-colors without a label image (exit 2)."""
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, "-o", out, "--region-colors", "#ff0000")
    assert_error(result, 2, "--region-colors needs --style-regions LABELS (the image the colours are in)", out)


def test_regions_need_colours(runner, content, style, tmp_path):
    """It asks for --region-colors with --style-regions (exit 2)."""
    labels = tmp_path / "labels.png"
    Image.new("RGB", (48, 32), (255, 0, 0)).save(labels)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, "-o", out, "--style-regions", labels)
    assert_error(result, 2, "--style-regions needs --region-colors, one colour per style image in style order, "
                            "e.g. --region-colors '#ff0000,#00ff00'", out)


def test_a_mask_that_is_the_output_is_refused(runner, content, style, tmp_path):
    """It refuses to write the result over a mask, and leaves the mask as it was (exit 2)."""
    left, _ = half_masks(tmp_path / "m")
    before = left.read_bytes()
    result = stylize(runner, content, style, "-o", left, "--style-mask", left)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: style mask {left} is also the output -o {left}; writing the result "
                                  "would destroy it: choose another output")
    assert left.read_bytes() == before


def test_a_white_mask_gives_the_plain_wasserstein_term():
    """It equals the unmasked Wasserstein-2 term when the mask covers everything."""
    wasserstein = pytest.importorskip("nstcli.terms.wasserstein")
    from nstcli.terms.guided import guided_wasserstein

    torch.manual_seed(3)
    style = {"relu1_1": torch.randn(1, 4, 6, 6), "relu2_1": torch.randn(1, 5, 3, 3)}
    current = {"relu1_1": torch.randn(1, 4, 8, 8), "relu2_1": torch.randn(1, 5, 4, 4)}
    weights = {"relu1_1": 1.0, "relu2_1": 0.5}
    plain = wasserstein.WassersteinStyle.from_features([style], [1.0], weights, 10.0)(current, torch.zeros(1))
    guided = guided_wasserstein(style, torch.ones(8, 8), None, weights, 10.0)(current, torch.zeros(1))
    assert guided.item() == pytest.approx(plain.item(), rel=1e-5)
    # Half the image: the term compares only the left half's statistics, weighted by its share.
    half = torch.zeros(8, 8)
    half[:, :4] = 1.0
    left = {"relu1_1": current["relu1_1"][..., :4].contiguous(), "relu2_1": current["relu2_1"][..., :2].contiguous()}
    plain_left = wasserstein.WassersteinStyle.from_features([style], [1.0], weights, 5.0)(left, torch.zeros(1))
    guided_left = guided_wasserstein(style, half, None, weights, 10.0)(current, torch.zeros(1))
    assert guided_left.item() == pytest.approx(plain_left.item(), rel=1e-4)


def test_masks_with_the_wasserstein_loss(runner, content, style, tmp_path):
    """It runs masked styles with --style-loss wasserstein where that term is installed."""
    pytest.importorskip("nstcli.terms.wasserstein")
    left, right = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, second_style(tmp_path), "-o", out, "--style-mask", left,
                     "--style-mask", right, "--style-loss", "wasserstein", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["loss"]["style"] > 0


def test_masks_refuse_blends(runner, content, style, tmp_path):
    """It says blend weights do not apply with style masks (exit 2)."""
    left, right = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    style2 = second_style(tmp_path)
    result = stylize(runner, content, style, style2, "-o", out, "--style-mask", left, "--style-mask", right,
                     "--style-blend", "0.7,0.3")
    assert_error(result, 2, "'style_blend' does not apply with style masks: each style paints its own region; "
                            "drop --style-blend (grey levels in the masks mix styles)", out)


@pytest.mark.e2e
def test_mask_usage_errors_come_before_torch(tmp_path):
    """It answers a miscounted mask without importing torch."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    make_image(tmp_path / "c.png")
    make_image(tmp_path / "s.png", seed=2)
    make_image(tmp_path / "t.png", seed=3)
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from nstcli.cli.main import nst
        result = CliRunner().invoke(nst, ["stylize", "c.png", "s.png", "t.png", "-o", "o.png", "--style-mask", "m.png"])
        print(result.exit_code, "torch" in sys.modules)
        print(result.stderr.strip())
    """)
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(src)})
    assert done.stdout.splitlines() == ["2 False", "Error: 2 style images but 1 --style-mask file; give one mask "
                                        "per style image, in the same order"]


def test_masks_and_regions_are_exclusive(runner, content, style, tmp_path):
    """It refuses --style-mask together with --style-regions (exit 2)."""
    left, _ = half_masks(tmp_path / "m")
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, "-o", out, "--style-mask", left, "--style-regions", left,
                     "--region-colors", "white")
    assert_error(result, 2, "give either --style-mask files or one --style-regions image, not both", out)


# --- batch -------------------------------------------------------------------------------------------


def test_batch_matches_masks_by_name(tmp_path, style):
    """It pairs photos/a.jpg with masks/a.png (and subfolders with subfolders), and names a missing mask."""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    make_image(photos / "a.jpg")
    make_image(photos / "trip" / "b.png")
    make_image(masks / "a.png")
    make_image(masks / "trip" / "b.jpg")
    items = plan_batch([photos], [style], tmp_path / "out", recursive=True, content_masks=masks)
    assert [(item.content.name, item.content_mask) for item in items] == [
        ("a.jpg", masks / "a.png"), ("b.png", masks / "trip" / "b.jpg")]
    assert items[0].masks().content_mask_path == masks / "a.png"

    make_image(photos / "c.png")
    from nstcli.errors import ImageError

    with pytest.raises(ImageError, match=r"^no mask for .*c\.png in --style-masks .*masks \(looked for "):
        plan_batch([photos], [style], tmp_path / "out", style_masks=masks)


def test_batch_runs_with_content_and_style_masks(runner, tmp_path, style):
    """It stylizes each photo with its own masks, found by name."""
    photos, faces, skies = tmp_path / "photos", tmp_path / "faces", tmp_path / "skies"
    faces.mkdir()
    skies.mkdir()
    for name in ("p0", "p1"):
        make_image(photos / f"{name}.png", size=(40, 28))
        left, _ = half_masks(tmp_path / "halves", size=(40, 28))
        left.rename(skies / f"{name}.png")
        Image.new("L", (40, 28), 200).save(faces / f"{name}.png")
    out = tmp_path / "out"
    result = runner.invoke(nst, ["batch", str(photos), "--style", str(style), "-o", str(out), "--content-masks",
                                 str(faces), "--style-masks", str(skies), *FAST])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["p0__style.png", "p1__style.png"]


def test_spatial_control_refuses_bad_counts_before_loading(tmp_path):
    """It checks in the library too: a source mask without a target mask is a usage error."""
    from nstcli.errors import ConfigError

    left, _ = half_masks(tmp_path / "m")
    control = SpatialControl(source_masks=[left])
    with pytest.raises(ConfigError, match="--style-source-mask needs --style-mask or --style-regions"):
        control.check([tmp_path / "s.png"], None, style_blend=None)


# --- the web page ------------------------------------------------------------------------------------


@pytest.fixture
def page(monkeypatch):
    """The page as AppTest runs it, with an untrained network and tiny runs."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from nstcli.ui import server

    monkeypatch.setenv(server.CONFIG_ENV, server.config_to_env(
        Config(weights="random", size=32, steps=3, device="cpu")))
    return AppTest.from_file(str(server.APP), default_timeout=120)


def upload_two_styles(at, tmp_path):
    if not hasattr(at.file_uploader[0], "upload"):
        pytest.skip("this streamlit's AppTest cannot upload files")
    at.file_uploader(key="content").upload("cat.png", make_image(tmp_path / "c.png", seed=1).read_bytes(), "image/png")
    uploader = at.file_uploader(key="styles")
    for i in range(2):
        uploader = uploader.upload(f"s{i}.png", make_image(tmp_path / f"s{i}.png", (40, 40), i + 2).read_bytes(),
                                   "image/png")
    return at.run()


def test_page_paints_uploaded_masks(page, tmp_path):
    """It offers one mask upload per style and runs with them."""
    at = upload_two_styles(page.run(), tmp_path)
    labels = [uploader.label for uploader in at.file_uploader]
    assert labels[2:] == ["Mask for style 1", "Mask for style 2", "Content weight map (white = keep the photo here)"]
    left, right = half_masks(tmp_path / "m")
    at.file_uploader(key="style-mask-0").upload("sky.png", left.read_bytes(), "image/png")
    at.file_uploader(key="style-mask-1").upload("ground.png", right.read_bytes(), "image/png")
    at.run()
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == []
    assert len(at.get("download_button")) == 1


def test_page_names_the_upload_in_a_mask_error(page, tmp_path):
    """It shows a black mask's error with the name it was uploaded as."""
    at = upload_two_styles(page.run(), tmp_path)
    left, _ = half_masks(tmp_path / "m")
    black = tmp_path / "black.png"
    Image.new("L", (48, 32), 0).save(black)
    at.file_uploader(key="style-mask-0").upload("sky.png", left.read_bytes(), "image/png")
    at.file_uploader(key="style-mask-1").upload("ground.png", black.read_bytes(), "image/png")
    at.run()
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Error: style mask 'ground.png' is black everywhere: style 2 (s1.png) would apply nowhere; paint "
        "white where it applies (or leave the mask out)"]


def test_repeated_region_colour_is_named(runner, content, style, tmp_path, monkeypatch):
    """It names the colour listed twice in --region-colors (exit 2), not a missing pixel."""
    no_network(monkeypatch)
    labels = make_image(tmp_path / "labels.png")
    result = runner.invoke(nst, ["stylize", str(content), str(style), str(style), "-o", str(tmp_path / "out.png"),
                                 *FAST, "--style-regions", str(labels), "--region-colors", "red,#ff0000"])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --region-colors lists the colour #ff0000 ('red' and '#ff0000') twice, for "
                                  "styles 1 and 2; give each style image its own colour")
