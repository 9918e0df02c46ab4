"""The README's first figure shows what `nst stylize` makes today: its recorded settings are the defaults.

benchmarks/stylize/readme_figure.py writes docs/readme_figure.png and, beside it, the settings it ran
with (docs/readme_figure.json); the README's caption is generated from that record (docs/generate.py).
A default changed since makes these tests fail until the script is run again.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from nstcli.config.fields import FIELDS, Config, as_dict
from nstcli.digests import sha256_of

ROOT = Path(__file__).resolve().parents[2]
FIGURE = ROOT / "docs" / "readme_figure.png"
AGAIN = "run `python benchmarks/stylize/readme_figure.py` to make the README figure again"


def _record() -> dict:
    path = FIGURE.with_suffix(".json")
    assert path.is_file(), f"{path} is missing; {AGAIN}"
    return json.loads(path.read_text(encoding="utf-8"))


def differences(recorded: dict, config: Config) -> dict:
    """{key: (recorded, now)} for every key whose recorded value is not `config`'s (keys added or gone too)."""
    now = json.loads(json.dumps(as_dict(config)))
    return {key: (recorded.get(key, "(not recorded)"), now.get(key, "(no such key)"))
            for key in sorted(set(recorded) | set(now)) if recorded.get(key, object()) != now.get(key, object())}


def test_the_figure_was_made_with_todays_defaults():
    record = _record()
    assert record["overrides"] == {}, f"the figure was made with overrides {record['overrides']}; {AGAIN}"
    assert differences(record["config"], Config()) == {}, f"the defaults changed since the figure was made; {AGAIN}"


def test_a_changed_default_would_be_caught():
    """The check can fail: a default other than the recorded one, or a key added, is a difference."""
    record = _record()
    assert differences(record["config"], Config(style_weight=Config().style_weight * 2)) == {
        "style_weight": (record["config"]["style_weight"], Config().style_weight * 2)}
    assert "new_key" in differences(record["config"], Config()) | differences({**record["config"], "new_key": 1},
                                                                               Config())
    assert set(record["config"]) == set(FIELDS)


def test_the_figure_shows_the_recorded_pairs_as_they_are_today():
    """The pairs are the bundled files of today (same bytes), and the figure has a row per pair."""
    record = _record()
    for run in record["pairs"]:
        assert sha256_of(ROOT / run["content"]) == run["content_sha256"], (run["content"], AGAIN)
        assert sha256_of(ROOT / run["style"]) == run["style_sha256"], (run["style"], AGAIN)
    with Image.open(FIGURE) as figure:
        width, height = figure.size
    size = record["config"]["size"]
    assert len(record["pairs"]) == 2 and width > 3 * size and 2 * size < height < 3 * size
