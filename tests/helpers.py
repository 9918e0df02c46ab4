"""Helpers the tests share: tiny seeded pictures and masks, fast run flags, the one `Error:` line, and
guards that a usage error costs no computing. The fixtures built on them are in conftest.py; clips
are in clips.py, tiny fast networks in fastnets.py."""

from __future__ import annotations

import random
import socket
import stat
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import nstcli

# The code under test, for tests that start a Python process of their own (PYTHONPATH).
SRC = Path(nstcli.__file__).resolve().parents[1]


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


# Flags that make an `nst video` run of a few frames take seconds: one step per frame.
VIDEO_FAST = ["--weights", "random", "--size", "32", "--steps", "1", "--frame-steps", "1", "--quiet"]

# What the schedulers set for an array job; tests clear them all, then set the ones they mean.
SCHEDULER_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                       "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX")


def no_network(monkeypatch):
    """Loading the network fails the test: a usage error must cost no computing. Every load (a run's,
    a batch's before its first item) reaches the network through the per-process cache."""
    from nstcli.network import load

    monkeypatch.setattr(load, "_cached_network", lambda *a, **k: pytest.fail("network loaded"))


def scheduler_environment(monkeypatch, **variables):
    """Exactly these scheduler variables set, none of the others a CI job may carry."""
    for name in SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def video(runner, *args):
    """`nst video` with these arguments (paths or strings)."""
    from nstcli.cli.main import nst

    return runner.invoke(nst, ["video", *map(str, args)])


def mode(path: Path) -> int:
    """A file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (free when this returns)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]



def standard_terms(loss, network, content, styles, blend=None):
    """Content, style and pixel terms of one scale straight from tensors (no caching, no colour
    handling), for tests that drive the engine themselves: terms/builder.py's build_objective."""
    import dataclasses

    from nstcli.terms.builder import Styles, build_objective

    blend = list(blend) if blend is not None else [1.0 / len(styles)] * len(styles)
    plain = dataclasses.replace(loss, preserve_color="none")
    return build_objective(plain, network, content, Styles(lambda: list(styles), blend))[1]
