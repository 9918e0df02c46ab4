"""Optional extras (export, ui, video): a command needing one that is not installed exits 1 with the pip
command that installs it for this copy of nstcli."""

from __future__ import annotations

import importlib.metadata
import json
import sys

import pytest

from fastnets import tiny_model
from helpers import error_line, make_image
from nstcli import extras
from nstcli.cli.main import nst


@pytest.fixture
def files(tmp_path):
    tiny_model(tmp_path / "m.safetensors")
    make_image(tmp_path / "style.png", size=(40, 40))
    make_image(tmp_path / "c.png")
    return tmp_path


@pytest.mark.parametrize("module, extra, args", [
    ("onnx", "export", ["export", "{d}/m.safetensors", "-o", "{d}/m.onnx"]),
    ("streamlit", "ui", ["ui", "--port", "8599"]),
    ("av", "video", ["video", "{d}/clip.mp4", "{d}/style.png", "-o", "{d}/out.mp4", "--weights", "random"]),
    ("cv2", "video", ["video", "{d}/frames", "--model", "{d}/m.safetensors", "-o", "{d}/out/"]),
])
def test_a_missing_extra_exits_1_with_an_install_command_that_works_here(runner, files, monkeypatch, module, extra,
                                                                          args):
    """Every command needing an extra that is not installed: exit 1, and the pip command for this install."""
    (files / "frames").mkdir()
    make_image(files / "frames" / "f1.png")
    (files / "clip.mp4").write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    result = runner.invoke(nst, [arg.format(d=files) for arg in args])
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert line.endswith(f", which is not installed; install it with: {extras.install_command(extra)}"), line


class FakeDistribution:
    def __init__(self, direct_url):
        self.direct_url = direct_url

    def read_text(self, name):
        return json.dumps(self.direct_url) if name == "direct_url.json" and self.direct_url else None


@pytest.mark.parametrize("direct_url, command", [
    (None, "pip install 'nstcli[ui]'"),  # from an index
    ({"url": "file:///home/me/nstcli", "dir_info": {"editable": True}}, "pip install -e '/home/me/nstcli[ui]'"),
    ({"url": "file:///home/me/nst%20cli", "dir_info": {}}, "pip install '/home/me/nst cli[ui]'"),
    ({"url": "https://files.example/nstcli-1.0.whl", "archive_info": {}}, "pip install 'nstcli[ui]'"),
])
def test_the_install_command_fits_where_nstcli_came_from(monkeypatch, direct_url, command):
    """From an index: nstcli[ui]; from a checkout (editable or not): that folder's path with [ui]."""
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: FakeDistribution(direct_url))
    assert extras.install_command("ui") == command
