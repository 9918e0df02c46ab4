"""--style-blend (style_blend): every mistake names the flag or key and is caught before any image is read."""

import pytest

from nstcli.stylize import single_plan
from nstcli import api
from nstcli.cli.main import nst
from nstcli.config.fields import Config

from helpers import FAST, error_line


@pytest.mark.parametrize("blend, message", [
    ("abc", "--style-blend must be a comma-separated list of numbers, or empty, got 'abc'"),
    ("0.5,,0.5", "--style-blend must be a comma-separated list of numbers, or empty, got '0.5,,0.5'"),
    ("1", "'style_blend' has 1 weights for 2 style images; give one weight per style image"),
    ("1,2,3", "'style_blend' has 3 weights for 2 style images; give one weight per style image"),
    ("-1,2", "--style-blend values must be finite, non-negative numbers, got '-1,2'"),
    ("0,0", "'style_blend' weights must not all be 0"),
    ("inf,1", "--style-blend values must be finite, non-negative numbers, got 'inf,1'"),
    ("nan,1", "--style-blend values must be finite, non-negative numbers, got 'nan,1'"),
])
def test_bad_blend_exit_2_before_work(runner, content, style, tmp_path, monkeypatch, blend, message):
    """It refuses a malformed, miscounted or non-finite --style-blend with exit 2 before reading images."""
    monkeypatch.setattr(single_plan, "open_image", lambda *a, **k: pytest.fail("image read"))
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), str(style), "-o", str(out), *FAST,
                                 "--style-blend", blend])
    assert result.exit_code == 2
    assert error_line(result) == f"Error: {message}"
    assert "Usage:" not in result.stderr
    assert not out.exists()


def test_blend_as_numbers_or_text(content, style):
    """It takes the blend as numbers (YAML list) or as the option's text, with the same effect."""
    config = Config(weights="random", size=32, steps=3, checkpoint_every=0)
    as_text = api.stylize(content, [style, content], config=config.replace(style_blend="0.25, 0.75")).image
    as_numbers = api.stylize(content, [style, content], config=config.replace(style_blend=[0.25, 0.75])).image
    equal = api.stylize(content, [style, content], config=config).image
    assert (as_text == as_numbers).all()
    assert not (as_text == equal).all()
