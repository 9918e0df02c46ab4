"""--style-blend: the text is checked by the library, and every mistake names the option."""

import pytest

from nstcli import api
from nstcli.cli import nst

from conftest import FAST, error_line


@pytest.mark.parametrize("blend, message", [
    ("abc", "--style-blend 'abc' is not a comma-separated list of numbers; give one weight per style image, "
            "e.g. 0.7,0.3"),
    ("0.5,,0.5", "--style-blend '0.5,,0.5' is not a comma-separated list of numbers; give one weight per "
                 "style image, e.g. 0.7,0.3"),
    ("1", "--style-blend has 1 weights for 2 style images; give one weight per style image"),
    ("1,2,3", "--style-blend has 3 weights for 2 style images; give one weight per style image"),
    ("-1,2", "--style-blend weights must be finite, non-negative and not all 0, got '-1,2'"),
    ("0,0", "--style-blend weights must be finite, non-negative and not all 0, got '0,0'"),
    ("inf,1", "--style-blend weights must be finite, non-negative and not all 0, got 'inf,1'"),
    ("nan,1", "--style-blend weights must be finite, non-negative and not all 0, got 'nan,1'"),
])
def test_bad_blend_exit_2_before_work(runner, content, style, tmp_path, monkeypatch, blend, message):
    """It refuses a malformed, miscounted or non-finite --style-blend with exit 2 before reading images."""
    monkeypatch.setattr(api, "open_image", lambda *a, **k: pytest.fail("image read"))
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), str(style), "-o", str(out), *FAST,
                                 "--style-blend", blend])
    assert result.exit_code == 2
    assert error_line(result) == f"Error: {message}"
    assert "Usage:" not in result.stderr
    assert not out.exists()


def test_blend_from_the_api_as_numbers_or_text(content, style):
    """It takes the blend as numbers or as the option's text, with the same effect."""
    from nstcli.config import Config

    config = Config(weights="random", size=32, steps=1, checkpoint_every=0)
    as_text = api.stylize(content, [style, content], config=config, style_blend="0.25, 0.75").image
    as_numbers = api.stylize(content, [style, content], config=config, style_blend=[0.25, 0.75]).image
    equal = api.stylize(content, [style, content], config=config).image
    assert (as_text == as_numbers).all()
    assert not (as_text == equal).all()
