"""Shared fixtures: tiny seeded images, an isolated weights cache, and a CLI runner."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

# The tests run 32-64 px images, often on machines shared with other jobs. There, one thread per core
# makes every tiny parallel region wait for a descheduled partner thread: one thread ran this suite
# 3.5x faster on a loaded 2-core machine, and leaves the other core to the other jobs.
torch.set_num_threads(1)


def make_image(path: Path, size=(48, 32), seed=0, mode="RGB") -> Path:
    """A small seeded picture with edges and colour (rectangles and ellipses on a gradient)."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(int(255 * y / height), rng.randrange(80, 160), 90))
    for _ in range(6):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(4, width // 2 + 5), y0 + rng.randrange(4, height // 2 + 5)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own weights cache; nothing touches ~/.cache or the network."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("NSTCLI_CACHE", str(cache))
    return cache


@pytest.fixture
def content(tmp_path) -> Path:
    return make_image(tmp_path / "content.png", size=(48, 32), seed=1)


@pytest.fixture
def style(tmp_path) -> Path:
    return make_image(tmp_path / "style.png", size=(40, 40), seed=2)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# Flags that make a stylize run take well under a second per test on a 2-core CPU.
FAST = ["--weights", "random", "--size", "32", "--steps", "3", "--quiet", "--checkpoint-every", "0"]


def error_line(result) -> str:
    """The one `Error:` line a failed command printed (warnings may come before it), checked unique."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def half_masks(folder, size=(48, 32), soft=0):
    """left.png (white on the left half) and right.png (its complement), with a `soft`-px ramp."""
    width, height = size
    left = Image.new("L", size)
    for x in range(width):
        if soft:
            value = min(1.0, max(0.0, (width / 2 + soft / 2 - x) / soft))
        else:
            value = 1.0 if x < width // 2 else 0.0
        for y in range(height):
            left.putpixel((x, y), round(255 * value))
    right = left.point(lambda v: 255 - v)
    folder.mkdir(parents=True, exist_ok=True)
    left.save(folder / "left.png")
    right.save(folder / "right.png")
    return folder / "left.png", folder / "right.png"
