"""Tiled optimisation: the grid, the blend, the memory estimate, the budget and tiled runs end to end."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from helpers import FAST, error_line, half_masks, make_image, no_network
from nstcli.stylize import single
from nstcli import api
from nstcli.network import memory
from nstcli.config.parse import parse_size
from nstcli.tiling import grid, window
from nstcli.tiling.plan import TileSettings, plan as plan_tiles
from nstcli.cli.main import nst
from nstcli.config.fields import Config, load_config
from nstcli.reports import Callback
from nstcli.errors import ConfigError, Interrupted
from nstcli.network.load import layers_needed, min_side
from nstcli.stylize.single_plan import load_network_for as load_network
from nstcli.terms.objective import features_of
from nstcli.terms.gram import gram_matrix

TILED = ["--weights", "random", "--size", "128", "--steps", "2", "--quiet", "--checkpoint-every", "0",
         "--start-size", "none", "--tile", "48"]
# Shallower layers for the runs that only check the plumbing: a quarter of the cost per pixel.
SHALLOW = ["--style-layers", "relu1_1,relu2_1,relu3_1", "--content-layers", "relu3_1"]
SHALLOW_KEYS = dict(style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu3_1",))
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]


@pytest.fixture
def big(tmp_path):
    return make_image(tmp_path / "big.png", size=(128, 96), seed=3)


def coverage(shape, tile, align, step):
    """How many interiors and own parts cover each pixel, and the sum of the blend weights."""
    height, width = shape
    _, overlap = grid.margin_and_overlap(tile, align)
    interiors = torch.zeros(height, width)
    owners = torch.zeros(height, width)
    weights = torch.zeros(height, width)
    for piece in grid.layout(shape, tile, align, step):
        y0, y1, x0, x1 = piece.interior
        interiors[y0:y1, x0:x1] += 1
        oy0, oy1, ox0, ox1 = piece.own
        owners[oy0:oy1, ox0:ox1] += 1
        weights[y0:y1, x0:x1] += piece.weight(height, width, overlap)[0, :, :, 0]
    return interiors, owners, weights


@pytest.mark.parametrize("shape,tile,align", [((96, 128), 48, 16), ((683, 1024), 384, 16), ((50, 333), 64, 2),
                                              ((1365, 2048), 1088, 16), ((40, 40), 48, 16)])
@pytest.mark.parametrize("step", [0, 1, 2, 5])
def test_tiles_cover_the_image_and_blend_weights_sum_to_one(shape, tile, align, step):
    """It covers every pixel, the own parts partition the image, and the blend weights add up to 1."""
    interiors, owners, weights = coverage(shape, tile, align, step)
    assert interiors.min() >= 1
    assert torch.equal(owners, torch.ones_like(owners))
    assert torch.allclose(weights, torch.ones_like(weights), atol=1e-6)


@pytest.mark.parametrize("shape,tile,align", [((96, 128), 48, 16), ((683, 1024), 384, 16), ((50, 333), 64, 2)])
def test_crops_hold_their_tile_with_context_on_the_pooling_grid(shape, tile, align):
    """It crops each tile with a margin of context, starting on the deepest layer's grid, within the tile size."""
    margin, _ = grid.margin_and_overlap(tile, align)
    height, width = shape
    for step in range(4):
        for piece in grid.layout(shape, tile, align, step):
            y0, y1, x0, x1 = piece.interior
            cy0, cy1, cx0, cx1 = piece.crop
            assert cy0 % align == 0 and cx0 % align == 0
            assert cy0 <= max(0, y0 - margin) and cy1 >= min(height, y1 + margin)
            assert cx0 <= max(0, x0 - margin) and cx1 >= min(width, x1 + margin)
            assert y1 - y0 <= tile - 2 * margin and x1 - x0 <= tile - 2 * margin
            assert cy1 - cy0 <= tile + align and cx1 - cx0 <= tile + align
            assert min(cy1 - cy0, cx1 - cx0) >= min(align, height, width)


def test_seams_move_from_step_to_step():
    """It shifts the grid at every step, so the boundaries of one step are not those of the next."""
    shape = (683, 1024)
    seen = [{(p.own[0], p.own[2]) for p in grid.layout(shape, 384, 16, step)} for step in range(4)]
    boundaries = [{p.own[0] for p in grid.layout(shape, 384, 16, step)} - {0} |
                  {-p.own[2] for p in grid.layout(shape, 384, 16, step)} - {0} for step in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert seen[a] != seen[b]
            assert not boundaries[a] & boundaries[b], (a, b)


def test_an_image_no_larger_than_a_tile_is_one_tile():
    """It runs an image that fits one tile as a single tile (the whole image)."""
    assert [p.interior for p in grid.layout((40, 44), 48, 16, 3)] == [(0, 40, 0, 44)]


def test_tiled_features_equal_the_whole_images_where_the_margin_covers_the_receptive_field():
    """It computes features tile by tile that equal the whole image's (relu1_1: a 3 px receptive field)."""
    config = Config(weights="random", content_layers=("relu1_1",), style_layers=("relu1_1",))
    network = load_network(config, torch.device("cpu"))
    image = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(0))
    whole = features_of(network, image)["relu1_1"]
    tiled = window.tiled_features(network, image, ["relu1_1"], 48, 1)["relu1_1"]
    assert torch.allclose(tiled, whole, atol=1e-5)
    for layer, tile in [("relu4_2", 32), ("relu3_1", 40)]:
        deep = Config(weights="random", content_layers=(layer,), style_layers=(layer,))
        net = load_network(deep, torch.device("cpu"))
        assert window.tiled_features(net, image, [layer], tile, 16)[layer].shape == features_of(net, image)[layer].shape
    grams = window.tiled_grams(network, [image, image.flip(-1)], [0.25, 0.75], ["relu1_1"], 48, 1)
    expected = 0.25 * gram_matrix(whole) + 0.75 * gram_matrix(features_of(network, image.flip(-1))["relu1_1"])
    assert torch.allclose(grams["relu1_1"], expected, rtol=1e-4, atol=1e-6)


def test_the_memory_estimate_grows_with_size_layers_and_tile():
    """It estimates more memory for larger images, deeper or more layers, and larger tiles."""
    content = ["relu4_2"]
    sizes = [(64, 64), (128, 96), (512, 341), (2048, 1365), (8192, 5461)]
    untiled = [memory.untiled_need(s, s, LAYERS, content, "lbfgs", 100).total for s in sizes]
    assert untiled == sorted(untiled) and len(set(untiled)) == len(untiled)
    for optimizer in ("adam", "lbfgs"):
        shallow = memory.untiled_need((512, 512), (512, 512), ["relu1_1", "relu2_1"], ["relu2_1"], optimizer, 10)
        deeper = memory.untiled_need((512, 512), (512, 512), ["relu1_1", "relu2_1", "relu3_1"], ["relu2_1"],
                                     optimizer, 10)
        deepest = memory.untiled_need((512, 512), (512, 512), LAYERS, ["relu2_1"], optimizer, 10)
        assert shallow.total < deeper.total < deepest.total
    tiled = [memory.tiled_need((5461, 8192), tile, LAYERS, content, 16).total for tile in (64, 256, 640, 1024)]
    assert tiled == sorted(tiled) and len(set(tiled)) == len(tiled)
    assert memory.tiled_need((5461, 8192), 640, LAYERS, content, 16).total < untiled[-1]


def test_the_largest_tile_that_fits_is_chosen():
    """It picks the largest tile whose estimate fits the budget, so the next size up would not."""
    shape, content = (2731, 4096), ["relu4_2"]
    tile = memory.largest_tile(shape, 4 * 10**9, LAYERS, content, 16, 32)
    share = memory.TILE_HEADROOM * 4 * 10**9
    assert memory.tiled_need(shape, tile, LAYERS, content, 16).total <= share
    assert memory.tiled_need(shape, tile + 16, LAYERS, content, 16).total > share
    assert memory.largest_tile(shape, 10**9, LAYERS, content, 16, 32) is None


@pytest.mark.parametrize("text,size", [("6GB", 6 * 10**9), ("6 gb", 6 * 10**9), ("512MB", 512 * 10**6),
                                       ("1.5g", 1_500_000_000), ("2GiB", 2 * 2**30), ("123456789", 123456789)])
def test_memory_sizes_parse(text, size):
    """It reads sizes as people write them."""
    assert parse_size(text) == size
    assert load_config(None, {"max_memory": text}).max_memory == size


@pytest.mark.parametrize("flags,message", [
    (["--max-memory", "lots"], "Error: --max-memory must be a size such as 6GB or 512MB, or empty, got 'lots'"),
    (["--max-memory", "6XB"], "Error: --max-memory must be a size such as 6GB or 512MB, or empty, got '6XB'"),
    (["--max-memory", "0GB"], "Error: --max-memory must be a size such as 6GB or 512MB, or empty, got '0GB'"),
    (["--tile", "20"], "Error: --tile must be 0 (no tiles) or at least 32 px, got 20"),
    (["--tile", "-1"], "Error: --tile must be at least 0, got '-1'"),
    (["--tile", "big"], "Error: --tile must be an integer or empty, got 'big'"),
])
def test_bad_tile_and_memory_options_are_usage_errors(runner, content, style, tmp_path, flags, message):
    """It refuses a bad --tile or --max-memory with one line naming it, exit 2, nothing written."""
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 *flags])
    assert result.exit_code == 2
    assert error_line(result) == message
    assert not out.exists()


def test_over_the_budget_without_tiles_is_refused_before_any_work(runner, content, style, tmp_path, monkeypatch):
    """It refuses a run over --max-memory with tiling off: how much it needs and what to do, exit 2."""
    def no_network(*args, **kwargs):
        raise AssertionError("the network was loaded")

    monkeypatch.setattr(single, "load_network", no_network)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--size", "2048", "--tile", "0", "--max-memory", "1GB"])
    need = memory.untiled_need((1365, 2048), (2048, 2048), LAYERS, ["relu4_2"], "lbfgs", 150).total
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: --size 2048 needs about {memory.describe(need)} at its 2048x1365 px scale, more than the "
        "1.0 GB --max-memory allows; drop --tile 0 to run that scale in tiles, raise --max-memory, or lower --size")
    assert not out.exists()


def test_a_budget_too_small_even_for_tiles_is_refused(runner, content, style, tmp_path):
    """It refuses a --max-memory that not even the smallest tile fits, exit 2."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--weights", "random", "--size", "4096", "--start-size", "none",
                                 "--max-memory", "1GB"])
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: --size 4096 does not fit the 1.0 GB --max-memory allows even in tiles: its "
                           "4096x2731 px scale needs about ")
    assert line.endswith(" with the smallest; raise --max-memory or lower --size")



def tile_plan(config: Config, shapes, style_sizes, steps, device):
    """tiling/plan.py's plan for a config, as stylize.single.plan_scales asks for it."""
    return plan_tiles(config.pick(TileSettings), shapes, style_sizes, steps, device, layers=layers_needed(config),
                      align=min_side(layers_needed(config)))

def test_the_budget_decides_which_scales_are_tiled():
    """It tiles exactly the scales whose estimate is over the budget, with the largest tile that fits."""
    shapes = [(192, 256), (384, 512), (768, 1024)]
    whole = [memory.untiled_need(s, s, LAYERS, ["relu4_2"], "lbfgs", 3).total for s in shapes]
    budget = whole[1] - 1  # the first scale fits, the others do not
    config = Config(weights="random", max_memory=budget, steps=3)
    plan = tile_plan(config, shapes, [(128, 96)], [3, 3, 3], torch.device("cpu"))
    assert plan[0] is None and plan[1] is not None and plan[2] is not None
    assert memory.tiled_need(shapes[2], plan[2], LAYERS, ["relu4_2"], 16).total <= memory.TILE_HEADROOM * budget
    assert tile_plan(config.replace(tile=0, max_memory=None), shapes, [(128, 96)], [3, 3, 3],
                      torch.device("cpu")) == [None, None, None]
    assert tile_plan(config.replace(tile=200, max_memory=None), shapes, [(128, 96)], [3, 3, 3], torch.device("cpu"))[1:] == [
        200, 200]


def test_a_tiled_run_end_to_end(runner, big, style, tmp_path):
    """It runs a forced tile size through the CLI; --json says which scale was tiled and how."""
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(big), str(style), "-o", str(out), *TILED, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scales"] == [[96, 128]]
    assert summary["tiling"][0]["tile"] == 48 and summary["tiling"][0]["optimizer"] == "adam"
    rows, cols = summary["tiling"][0]["grid"]
    assert rows >= 2 and cols >= 3
    assert summary["peak_memory_mb"] > 0
    assert Image.open(out).size == (128, 96)


def test_coarse_scales_run_whole_and_large_ones_in_tiles(runner, big, style, tmp_path):
    """It tiles only the scales larger than the tile; checkpoints show the whole image."""
    out = tmp_path / "out.png"
    flags = [f for f in TILED if f not in ("--start-size", "none", "--checkpoint-every", "0")]
    result = runner.invoke(nst, ["stylize", str(big), str(style), "-o", str(out), *flags, *SHALLOW,
                                 "--start-size", "40", "--scales-from", "start", "--checkpoint-every", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scales"] == [[30, 40], [60, 80], [96, 128]]
    assert summary["tiling"][0] is None and summary["tiling"][2]["tile"] == 48
    assert [Image.open(path).size for path in summary["checkpoints"]] == [(40, 30), (80, 60), (128, 96)]


class Reports(Callback):
    def __init__(self, stop_at=None):
        self.reports, self.stop_at = [], stop_at

    def on_step(self, report):
        self.reports.append((report.step, report.loss, report.tiles, tuple(report.image.shape)))
        if report.step == self.stop_at:
            raise KeyboardInterrupt


def test_a_tiled_step_is_one_pass_over_the_tiles_and_the_loss_goes_down(big, style):
    """It reports one step per pass over all tiles, with the whole image, and the loss falls."""
    seen = Reports()
    config = Config(weights="random", size=128, steps=4, start_size=None, checkpoint_every=0,
                    tile=48, style_weight=1e4, **SHALLOW_KEYS)
    result = api.stylize(big, style, None, config=config, callbacks=[seen])
    assert [step for step, _, _, _ in seen.reports] == [1, 2, 3, 4]
    assert all(count > 1 and shape == (1, 3, 96, 128) for _, _, count, shape in seen.reports)
    assert seen.reports[-1][1] < seen.reports[0][1]
    assert tuple(result.image.shape) == (1, 3, 96, 128)


def test_interrupting_a_tiled_scale_saves_the_whole_image(big, style, tmp_path):
    """It saves the whole current image, not a tile, when interrupted during a tiled scale."""
    out = tmp_path / "out.png"
    config = Config(weights="random", size=128, steps=5, start_size=None, checkpoint_every=0, tile=48,
                    **SHALLOW_KEYS)
    with pytest.raises(Interrupted) as caught:
        api.stylize(big, style, out, config=config, callbacks=[Reports(stop_at=2)])
    assert "interrupted at step" in str(caught.value)
    assert Image.open(out).size == (128, 96)


def test_video_style_extra_terms_are_refused_at_tiled_scales(big, style):
    """It refuses extra terms (which see the whole image) when a scale needs tiles."""
    config = Config(weights="random", size=128, steps=1, start_size=None, tile=48)
    with pytest.raises(ConfigError, match=r"^--tile 48 would run the 128x96 px scale in tiles, which runs with extra "
                                          r"terms \(video\) cannot use yet; drop --tile \(or give --tile 0\)$"):
        api.stylize(big, style, None, config=config, extra_terms=lambda shape, device: [])


def test_masks_run_in_tiles(runner, big, tmp_path):
    """It paints each masked style on its own half at a tiled scale too, with a content mask alongside."""
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (48, 48), (230, 20, 20)).save(red)
    Image.new("RGB", (48, 48), (20, 20, 230)).save(blue)
    left, right = half_masks(tmp_path / "m", size=(128, 96))
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(big), str(red), str(blue), "-o", str(out), *TILED, *SHALLOW,
                                 "--steps", "12", "--optimizer", "adam", "--lr", "0.1", "--json",
                                 "--style-mask", str(left), "--style-mask", str(right), "--content-mask", str(left)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tiling"][0]["tile"] == 48
    image = torch.tensor(list(Image.open(out).getdata()), dtype=torch.float32).view(96, 128, 3)
    redness = image[..., 0] - image[..., 2]
    assert redness[:, :56].mean() - redness[:, 72:].mean() > 60


def test_wasserstein_masks_are_refused_at_tiled_scales(runner, big, style, tmp_path):
    """It refuses guided Wasserstein terms at a tiled scale, with a line saying what to do."""
    left, right = half_masks(tmp_path / "m", size=(128, 96))
    result = runner.invoke(nst, ["stylize", str(big), str(style), str(style), "-o", str(tmp_path / "o.png"), *TILED,
                                 "--style-loss", "wasserstein", "--style-mask", str(left), "--style-mask", str(right)])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --tile 48 would run the 128x96 px scale in tiles, which runs with masks "
                                  "with --style-loss wasserstein cannot use yet; drop --tile (or give --tile 0)")


def test_a_batch_runs_tiled(runner, big, style, tmp_path):
    """It runs a batch item in tiles like a single image."""
    out = tmp_path / "results"
    result = runner.invoke(nst, ["batch", str(big), "--style", str(style), "-o", str(out), *TILED, *SHALLOW,
                                 "--steps", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1  # one JSON line for the one item
    assert Image.open(out / "big__style.png").size == (128, 96)


@pytest.mark.parametrize("size, budget, end", [
    ("32", "1MB", "32x21 px scale, which then runs whole and needs about 840 MB, more than the 1 MB --max-memory "
                  "allows; not even the smallest tiles fit: raise --max-memory or lower --size"),
    ("1024", "2GB", "1024x683 px scale, which then runs whole and needs about 2.5 GB, more than the 2.0 GB "
                    "--max-memory allows; give --tile 544 or less, or leave it out"),
])
def test_tile_larger_than_the_image_keeps_the_memory_check(runner, content, style, tmp_path, monkeypatch, size,
                                                           budget, end):
    """It refuses --tile 4096 over a budget the whole scale exceeds (it would run untiled), exit 2."""
    no_network(monkeypatch)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST,
                                 "--size", size, "--start-size", "none", "--tile", "4096", "--max-memory", budget])
    assert result.exit_code == 2
    assert error_line(result) == f"Error: --tile 4096 is at least the {end}"
    assert not (tmp_path / "out.png").exists()


def test_forced_tile_with_wasserstein_masks_names_tile(runner, style, tmp_path, monkeypatch):
    """It names --tile, not --max-memory, when forced tiles meet masks with the Wasserstein loss (exit 2)."""
    no_network(monkeypatch)
    photo = make_image(tmp_path / "photo.png", size=(64, 64), seed=1)
    left, right = half_masks(tmp_path / "masks", size=(64, 64))
    result = runner.invoke(nst, ["stylize", str(photo), str(style), str(style), "-o", str(tmp_path / "out.png"),
                                 *FAST, "--size", "64", "--tile", "32", "--style-loss", "wasserstein",
                                 "--style-mask", str(left), "--style-mask", str(right)])
    assert result.exit_code == 2
    assert error_line(result) == ("Error: --tile 32 would run the 64x64 px scale in tiles, which runs with masks "
                                  "with --style-loss wasserstein cannot use yet; drop --tile (or give --tile 0)")
