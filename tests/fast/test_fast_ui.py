"""The web page offers trained networks (nst ui --models DIR) and applies one in a single pass."""

from __future__ import annotations

import pytest

from fastnets import tiny_model
from helpers import free_port
from nstcli.cli.main import nst
from nstcli.fast import builtin
from nstcli.ui import server
from nstcli.ui.fast import MODELS_ENV, find_models


def test_find_models_lists_model_files_only(tmp_path):
    tiny_model(tmp_path / "b.safetensors", style="waves")
    tiny_model(tmp_path / "a.safetensors", style="starry")
    (tmp_path / "c.safetensors").write_text("not a model")
    listed = find_models(tmp_path)
    builtins = [entry.path.name for entry in find_models(None)]
    assert [entry.path.name for entry in listed] == ["a.safetensors", "b.safetensors", *builtins]
    assert listed[0].label.startswith("starry (a.safetensors")
    assert find_models(tmp_path / "missing") == find_models(None)
    assert [entry.path for entry in find_models(None)] == [style.path for style in builtin.available()]


def test_nst_ui_hands_the_models_folder_to_the_page(tmp_path, runner, monkeypatch):
    started = []

    class Server:
        def __init__(self, command, env):
            started.append(env)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(server.subprocess, "Popen", Server)
    monkeypatch.setattr(server, "require_streamlit", lambda: None)
    port = free_port()
    result = runner.invoke(nst, ["ui", "--port", str(port), "--models", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert started[0][MODELS_ENV] == str(tmp_path.resolve())
    missing = runner.invoke(nst, ["ui", "--port", str(port), "--models", str(tmp_path / "nope")])
    assert missing.exit_code == 2


def test_the_page_applies_a_trained_network(tmp_path, monkeypatch):
    testing = pytest.importorskip("streamlit.testing.v1")
    tiny_model(tmp_path / "tiny.safetensors", style="tiny")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    monkeypatch.setenv(server.CONFIG_ENV, '{"weights": "random", "size": 64}')
    page = testing.AppTest.from_file(str(server.APP), default_timeout=120).run()
    page.radio(key="source").set_value("Use the bundled examples").run()
    assert page.selectbox(key="model").options[0].startswith("tiny (tiny.safetensors")
    buttons = [button for button in page.button if button.label == "Apply network"]
    buttons[0].click().run()
    assert not page.error, [e.value for e in page.error]
    result = page.session_state["result"]
    assert result["summary"]["weights"] == "trained network 'tiny'" and result["png"].startswith(b"\x89PNG")
    assert result["summary"]["width"] == 64  # the page's size setting
