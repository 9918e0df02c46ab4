"""Runs with the neighbour style term, the self-similarity content term, the pyramid, rotated styles and
the OkLab colour match: they run at every scale, and the combinations that make no sense are refused."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from helpers import FAST, error_line, half_masks, make_image, no_network
from nstcli.cli.main import nst
from nstcli.image import colour
from nstcli.optim.pyramid import decompose, synthesize, usable_levels
from nstcli.stylize.styles import rotated

NEIGHBOURS = ["--style-loss", "neighbours", "--optimizer", "adam", "--pyramid-levels", "4",
              "--style-rotations", "0,90,180,270", "--content-loss", "self-similarity"]


def stylize(runner, *args):
    return runner.invoke(nst, ["stylize", *map(str, args), *FAST])


def test_a_coarse_to_fine_run_with_every_option(runner, content, style, tmp_path):
    second = make_image(tmp_path / "second.png", size=(40, 40), seed=5)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), str(second), "-o", str(out), *FAST, *NEIGHBOURS,
                                 "--size", "64", "--start-size", "32", "--style-blend", "0.7,0.3",
                                 "--preserve-color", "oklab", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scales"] == [[21, 32], [43, 64]]
    assert set(summary["loss"]) == {"loss", "content", "style"}
    assert Image.open(out).size == (64, 43)


@pytest.mark.parametrize("args, expected", [
    (["--pyramid-levels", "3"], "Error: 'pyramid_levels' needs 'optimizer' adam"),
    (["--optimizer", "adam", "--pyramid-levels", "13"], "Error: --pyramid-levels must be at most 12, got '13'"),
    (["--style-rotations", "45"], "Error: 'style_rotations' must be distinct angles among 0, 90, 180, 270"),
    (["--style-rotations", "90,90"], "Error: 'style_rotations' must be distinct angles"),
    (["--neighbour-content-mix", "1.5"], "Error: --neighbour-content-mix must be at most 1.0, got '1.5'"),
    (["--neighbour-refresh", "-1"], "Error: --neighbour-refresh must be at least 0, got '-1'"),
    (["--style-loss", "neighbors"], "Error: --style-loss must be one of gram, wasserstein, neighbours"),
    (["--content-loss", "gram"], "Error: --content-loss must be one of features, self-similarity"),
    (["--style-loss", "neighbours", "--tile", "32", "--size", "64"],
     "Error: --tile 32 would run the 64x43 px scale in tiles, which runs with --style-loss neighbours cannot use"),
    (["--content-loss", "self-similarity", "--tile", "32", "--size", "64"],
     "Error: --tile 32 would run the 64x43 px scale in tiles, which runs with --content-loss self-similarity"),
])
def test_combinations_that_make_no_sense_are_refused(runner, content, style, tmp_path, monkeypatch, args, expected):
    no_network(monkeypatch)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST, *args])
    assert result.exit_code == 2, result.output
    assert error_line(result).startswith(expected), error_line(result)
    assert not out.exists()


def test_masks_with_the_options_that_cannot_follow_them_are_refused(runner, content, style, tmp_path, monkeypatch):
    no_network(monkeypatch)
    left, right = half_masks(tmp_path / "masks")
    second = make_image(tmp_path / "second.png", size=(40, 40), seed=5)
    cases = [
        (["--style-mask", left, "--style-mask", right, "--style-loss", "neighbours"],
         "Error: style masks work with --style-loss gram or wasserstein only, not neighbours"),
        (["--style-mask", left, "--style-mask", right, "--style-rotations", "0,90"],
         "Error: --style-rotations reads each style turned, which style masks cannot follow"),
    ]
    for args, expected in cases:
        result = stylize(runner, content, style, second, "-o", tmp_path / "out.png", *args)
        assert result.exit_code == 2, result.output
        assert error_line(result).startswith(expected), error_line(result)
    result = stylize(runner, content, style, "-o", tmp_path / "out.png", "--content-mask", left,
                     "--content-loss", "self-similarity")
    assert result.exit_code == 2, result.output
    assert error_line(result).startswith("Error: --content-mask weighs the content's feature maps")


def test_training_a_fast_network_with_neighbours_is_refused(runner, style, tmp_path):
    photos = tmp_path / "photos"
    for i in range(4):
        make_image(photos / f"p{i}.png", size=(64, 64), seed=i)
    result = runner.invoke(nst, ["train", str(style), "--data", str(photos), "-o", str(tmp_path / "m.safetensors"),
                                 "--weights", "random", "--steps", "1", "--style-loss", "neighbours", "--quiet"])
    assert result.exit_code == 2, result.output
    assert error_line(result).startswith("Error: --style-loss neighbours matches each painted image's own")


def test_the_pyramid_describes_its_image_exactly():
    image = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    pyramid = decompose(image, 8)
    assert len(pyramid) == usable_levels(image.shape, 8) + 1 == 6  # 37 px halves five times to 1
    assert torch.allclose(synthesize(pyramid), image, atol=1e-6)
    assert pyramid[-1].shape[-2:] == (1, 1)


def test_rotations_turn_each_style_and_share_its_weight():
    style = torch.arange(6.0).reshape(1, 1, 2, 3)
    images, blend = rotated([style], [0.8], (0, 90, 180))
    assert [tuple(i.shape[-2:]) for i in images] == [(2, 3), (3, 2), (2, 3)]
    assert torch.equal(images[2], style.flip(-1).flip(-2))
    assert blend == pytest.approx([0.8 / 3] * 3)
    assert rotated([style], [1.0], (0,)) == ([style], [1.0])


def test_oklab_round_trip_and_chroma_from_the_content():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 8, 8, generator=g)
    assert torch.allclose(colour.oklab_to_rgb(colour.rgb_to_oklab(image)), image, atol=1e-4)
    # White in OkLab is L = 1, a = b = 0 (Ottosson's reference values).
    white = colour.rgb_to_oklab(torch.ones(1, 3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)
    # Mid-range colours, so that little falls outside the gamut and is clipped.
    output, content = (0.3 + 0.4 * torch.rand(1, 3, 8, 8, generator=g) for _ in range(2))
    result = colour.oklab_chroma(output, content)
    lab_result, lab_output, lab_content = (colour.rgb_to_oklab(x) for x in (result, output, content))
    # Lightness stays the output's (up to gamut clipping); chroma follows the content's pattern.
    assert torch.allclose(lab_result[:, 0], lab_output[:, 0], atol=0.02)
    correlation = torch.corrcoef(torch.stack([lab_result[:, 1].flatten(), lab_content[:, 1].flatten()]))[0, 1]
    assert correlation > 0.9


def test_a_neighbour_run_over_the_memory_budget_is_refused_before_any_work(runner, content, style, tmp_path,
                                                                           monkeypatch):
    # The network's estimate fits 4 GB at 1024 px; with the search's hypercolumns and style set it does
    # not, and the search cannot run in tiles.
    no_network(monkeypatch)
    big = make_image(tmp_path / "big.png", size=(1024, 682), seed=3)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(big), str(style), "-o", str(out), *FAST, "--config", "neighbours",
                                 "--size", "1024", "--max-memory", "4GB"])
    assert result.exit_code == 2, result.output
    assert error_line(result).startswith("Error: --size 1024 with --style-loss neighbours needs about ")
    assert "more than the 4.0 GB --max-memory allows" in error_line(result)
    assert not out.exists()
