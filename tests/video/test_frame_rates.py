"""Frame rates as typed from a spec sheet: --fps 29.97 is NTSC's 30000/1001, and what is no rate a usage error."""

from __future__ import annotations

from fractions import Fraction

import pytest

from clips import frame_folder
from helpers import VIDEO_FAST, error_line, no_network, video
from nstcli.video.reader import open_clip


@pytest.mark.parametrize("typed, rate", [("29.97", Fraction(30000, 1001)), ("23.976", Fraction(24000, 1001)),
                                         ("0.1", Fraction(1, 10)), ("12.5", Fraction(25, 2))])
def test_fps_of_any_decimal_is_a_short_fraction(runner, style, tmp_path, typed, rate):
    """It writes a folder's frames at --fps 29.97 as NTSC's 30000/1001 (and 0.1 as 1/10), not an overflow."""
    out = tmp_path / "out.mp4"
    result = video(runner, frame_folder(tmp_path), style, "-o", out, *VIDEO_FAST, "--fps", typed)
    assert result.exit_code == 0, result.output
    assert open_clip(out).rate == rate


@pytest.mark.parametrize("typed", ["nan", "inf", "-inf", "0", "1001", "1e400", "fast"])
def test_fps_that_is_no_rate_is_a_usage_error(runner, style, tmp_path, monkeypatch, typed):
    """It refuses --fps nan (and inf, 0, 1001, words) with exit 2 and the range, before computing."""
    no_network(monkeypatch)
    result = video(runner, frame_folder(tmp_path), style, "-o", tmp_path / "out.mp4", *VIDEO_FAST, "--fps", typed)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: Invalid value for '--fps': {typed!r} is not a frame rate; give frames "
                                  "per second from 0.001 to 1000, e.g. 25 or 29.97 (see 'nst video --help')")
    assert not (tmp_path / "out_frames").exists()
