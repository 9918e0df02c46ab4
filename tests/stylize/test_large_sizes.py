"""Large outputs: fewer steps at the large scales, and the style never enlarged past its own pixels."""

import pytest
import torch

from nstcli import api
from nstcli.config.fields import Config, load_config
from nstcli.image.io import style_side
from nstcli.stylize.sizes import scale_sizes, steps_per_scale
from nstcli.stylize.styles import PreparedStyle

from helpers import make_image

BASE = dict(weights="random", checkpoint_every=0)


def test_taper_gives_fewer_steps_above_its_side():
    """Scales above taper_from get steps x taper_from / side; those at or below it keep `steps`."""
    config = Config(size=1536, steps=150, start_size=192, taper_from=512)
    sizes = scale_sizes(config)
    assert sizes == [192, 384, 768, 1536]
    assert steps_per_scale(config, sizes) == [150, 150, 100, 50]
    assert steps_per_scale(config.replace(taper_from=None), sizes) == [150] * 4
    # never below one step, and 0 stays 0 (a run that only reads the start image)
    assert steps_per_scale(config.replace(steps=1), sizes) == [1, 1, 1, 1]
    assert steps_per_scale(config.replace(steps=0), sizes) == [0, 0, 0, 0]
    # the first scale is never tapered: a single-scale run at any size does all its steps
    assert steps_per_scale(config.replace(start_size=None), [1536]) == [150]
    assert steps_per_scale(config.replace(start_size=1024), [1024, 1536]) == [150, 50]


def test_default_schedule_tapers_every_later_scale():
    """The first scale runs `steps`; every later one at most steps x 256 / side; at 2048 px the large
    scales are shorter still."""
    config = load_config(None, {"size": 512})
    assert steps_per_scale(config, scale_sizes(config)) == [config.steps, round(config.steps / 2)]
    big = config.replace(size=2048)
    counts = steps_per_scale(big, scale_sizes(big))
    assert counts[-1] < counts[0] and counts == sorted(counts, reverse=True)


def test_taper_reaches_the_run(tmp_path):
    """A run takes the tapered counts: its log has that many steps at each scale."""
    content = make_image(tmp_path / "c.png", size=(64, 48), seed=1)
    style = make_image(tmp_path / "s.png", size=(64, 64), seed=2)
    config = Config(size=64, steps=4, start_size=32, taper_from=32, **BASE)
    result = api.stylize(content, style, config=config)
    assert [row["scale"] for row in result.log] == [0] * 4 + [1] * 2


@pytest.mark.parametrize("asked, own, used", [(300, (200, 100), 200), (150, (200, 100), 150), (200, (100, 200), 200)])
def test_style_side_never_past_the_image(asked, own, used):
    assert style_side(own, asked) == used


def test_style_is_used_at_its_own_resolution_at_most(tmp_path):
    """Asked for 96 px, a 40 px style is used at 40 px; asked for 24 px, it is shrunk to 24."""
    style = PreparedStyle(make_image(tmp_path / "s.png", size=(40, 30), seed=2))
    big, small = style.tensors(96, 16, torch.device("cpu"))[0], style.tensors(24, 16, torch.device("cpu"))[0]
    assert tuple(big.shape[-2:]) == (30, 40)
    assert tuple(small.shape[-2:]) == (18, 24)


def test_default_layer_balance_damps_block_five():
    """Empty style_layer_weights: 1 per layer, DEEP_LAYER_WEIGHT for VGG19's fifth block, whatever the layers."""
    from nstcli.terms.objective import DEEP_LAYER_WEIGHT, style_layer_weights
    from nstcli.terms.settings import LossSettings

    assert Config().style_layer_weights is None
    assert style_layer_weights(Config().pick(LossSettings)) == {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0,
                                             "relu5_1": DEEP_LAYER_WEIGHT}
    assert style_layer_weights(Config(style_layers=("relu5_2", "conv3_1")).pick(LossSettings)) == {"relu5_2": DEEP_LAYER_WEIGHT,
                                                                                 "conv3_1": 1.0}
    # given weights are taken as they are
    assert style_layer_weights(Config(style_layer_weights=(1, 1, 1, 1, 1)).pick(LossSettings))["relu5_1"] == 1


def test_large_recipe_runs_jcjohnsons_stages():
    """--config large: 256 px first with 300 steps, then 512 ... 3620 px, each shorter (steps x 256 / side)."""
    config = load_config("large", {"size": 3620})
    sizes = scale_sizes(config)
    assert sizes == [256, 512, 1024, 2048, 3620]
    assert steps_per_scale(config, sizes) == [300, 75, 38, 19, 11]
    assert config.style_weight == 300 and config.style_layer_weights is None  # the defaults' layer balance
