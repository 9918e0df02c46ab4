"""Built-in styles: taken by name wherever a model file is, listed by `nst styles`, checked as any model."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import error_line, make_image
from fastnets import tiny_model
from nstcli.cli.main import nst
from nstcli.errors import ModelError
from nstcli.fast import builtin, modelfile
from nstcli.image.io import load_image


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A built-in folder holding a tiny network under the name `starry`."""
    folder = tmp_path / "styles"
    folder.mkdir()
    monkeypatch.setattr(builtin, "FOLDER", folder)
    tiny_model(folder / "starry.safetensors", seed=3, style="starry_night")
    return folder


def test_apply_takes_a_built_in_style_by_name(tmp_path, runner, installed):
    photo = make_image(tmp_path / "photo.png", size=(40, 28))
    by_name = runner.invoke(nst, ["apply", "starry", str(photo), "-o", str(tmp_path / "a.png"), "--quiet"])
    assert by_name.exit_code == 0, by_name.output
    by_path = runner.invoke(nst, ["apply", str(installed / "starry.safetensors"), str(photo), "-o",
                                  str(tmp_path / "b.png"), "--quiet"])
    assert by_path.exit_code == 0, by_path.output
    assert by_name.stdout.strip() == str(tmp_path / "a.png")
    assert torch.equal(load_image(tmp_path / "a.png"), load_image(tmp_path / "b.png"))


def test_a_file_of_that_name_wins_over_the_built_in_style(tmp_path, runner, installed, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_model(tmp_path / "starry", seed=9, style="mine")
    assert modelfile.read_header("starry")[0].style == "mine"
    (tmp_path / "starry").unlink()
    assert modelfile.read_header("starry")[0].style == "starry_night"


def test_an_unknown_name_says_which_styles_there_are(tmp_path, runner, installed):
    photo = make_image(tmp_path / "photo.png")
    result = runner.invoke(nst, ["apply", "vermeer", str(photo), "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 1
    assert error_line(result) == ("Error: model vermeer does not exist and is not a built-in style (starry; nst "
                                  "styles lists them); check the name or path")
    assert not (tmp_path / "o.png").exists()


def test_a_damaged_built_in_style_is_refused_as_any_model_file(installed):
    path = installed / "starry.safetensors"
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(ModelError, match="damaged or truncated"):
        modelfile.load("starry")


def test_nst_styles_lists_what_is_installed(runner, installed):
    listed = runner.invoke(nst, ["styles"])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        f"starry     The Starry Night (Vincent van Gogh, 1889), width 8, 0 training steps, "
        f"{(installed / 'starry.safetensors').stat().st_size / 1e6:.1f} MB"]
    rows = [json.loads(line) for line in runner.invoke(nst, ["styles", "--json"]).stdout.splitlines()]
    assert [(row["name"], row["artist"], row["width"]) for row in rows] == [("starry", "Vincent van Gogh", 8)]


def test_the_page_and_video_take_built_in_styles(tmp_path, installed):
    pytest.importorskip("av")
    from nstcli.fast.video import stylize_video
    from nstcli.ui.fast import find_models

    assert [entry.label for entry in find_models(None)] == ["starry: The Starry Night (Vincent van Gogh, 1889) "
                                                            "(built-in)"]
    frames = tmp_path / "frames"
    for index in range(2):
        make_image(frames / f"f{index}.png", size=(32, 24), seed=index)
    result = stylize_video(frames, "starry", tmp_path / "out", blend=0.5)
    assert result.frames == 2 and len(list((tmp_path / "out").glob("*.png"))) == 2


def test_the_shipped_styles_are_small_half_precision_networks_of_the_catalogue():
    shipped = builtin.available()
    assert shipped, "no built-in style is installed"
    for style in shipped:
        info, table = modelfile.read_header(style.path)
        assert {entry["dtype"] for entry in table.values()} == {"F16"}, style.name
        assert style.path.stat().st_size < 1_500_000, style.name
        assert info.training["steps"] >= 1000 and info.training["images"] >= 10, style.name
        net, _ = modelfile.load(style.name)
        out = net(torch.rand(1, 3, 32, 32))
        assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
