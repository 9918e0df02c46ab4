"""Shared fixtures: tiny seeded images, an isolated weights cache, a CLI runner, the umask.

The helpers they use are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from helpers import FAST, error_line, half_masks, make_image  # noqa: F401  (the helpers, importable from here too)

# The tests run 32-64 px images, often on machines shared with other jobs. There, one thread per core
# makes every tiny parallel region wait for a descheduled partner thread: one thread ran this suite
# 3.5x faster on a loaded 2-core machine, and leaves the other core to the other jobs.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own weights cache; nothing touches ~/.cache or the network."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("NSTCLI_CACHE", str(cache))
    return cache


@pytest.fixture
def fresh_network_cache():
    """The per-process network cache emptied before the test and after it: a test that changes how
    weights load (a fake download, a counting loader) must neither find a network loaded otherwise nor
    leave its own behind for the next test."""
    from nstcli.network import load

    load._cached_network.cache_clear()
    yield
    load._cached_network.cache_clear()


@pytest.fixture
def content(tmp_path) -> Path:
    return make_image(tmp_path / "content.png", size=(48, 32), seed=1)


@pytest.fixture
def style(tmp_path) -> Path:
    return make_image(tmp_path / "style.png", size=(40, 40), seed=2)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def umask():
    """Set the process umask (022 to begin with) for one test, restoring it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


