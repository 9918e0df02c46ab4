"""Config loading: defaults < YAML < flags, and errors that name the key."""

from pathlib import Path

import pytest

from nstcli.cli import nst
from nstcli.config import Config, load_config
from nstcli.errors import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_defaults_match_default_yaml():
    """It keeps configs/default.yaml identical to the dataclass defaults."""
    assert load_config(Path(__file__).parent.parent / "configs" / "default.yaml") == Config()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    """It loads every preset in configs/."""
    assert isinstance(load_config(path), Config)


def test_there_are_presets():
    """It ships at least the default and the seed presets."""
    assert {"default.yaml", "seed.yaml"} <= {p.name for p in CONFIGS}


def test_seed_preset_is_the_reports_setup():
    """It keeps the report's optimiser, learning rate, epochs and checkpoint interval."""
    config = load_config(Path(__file__).parent.parent / "configs" / "seed.yaml")
    assert (config.optimizer, config.lr, config.steps, config.checkpoint_every) == ("adam", 0.01, 1000, 100)


def test_precedence(tmp_path):
    """It lets the file override defaults and flags override the file."""
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\nsize: 64\n")
    config = load_config(path, {"steps": "9"})
    assert (config.steps, config.size, config.optimizer) == (9, 64, Config().optimizer)


def test_unknown_key_suggests(tmp_path):
    """It names an unknown key and the closest valid one."""
    path = tmp_path / "c.yaml"
    path.write_text("stpes: 7\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'stpes' .*did you mean 'steps'\?"):
        load_config(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps: -1\n", "'steps' must be at least 0, got -1"),
        ("size: 0\n", "'size' must be at least 16, got 0"),
        ("optimizer: sgd\n", "'optimizer' must be one of lbfgs, adam, got 'sgd'"),
        ("steps: many\n", "'steps' must be an integer, got 'many'"),
        ("lr: 0\n", "'lr' must be greater than 0, got 0"),
        ("style_layers: [relu9_9]\n", "'style_layers' has unknown VGG19 layer 'relu9_9'"),
        ("style_layer_weights: [1, 2]\n", "'style_layer_weights' has 2 values but 'style_layers' has 5 layers"),
        ("quiet: maybe\n", "'quiet' must be true or false, got 'maybe'"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    """It rejects wrong types and out-of-range values, naming the key."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_yaml_python_tags_are_not_constructed(tmp_path):
    """It refuses YAML that asks to build Python objects instead of running it."""
    marker = tmp_path / "pwned"
    path = tmp_path / "c.yaml"
    path.write_text(f"steps: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "text, message",
    [("", "is empty"), ("- 1\n- 2\n", "must be a mapping of keys to values"), ("a: [\n", "is not valid YAML")],
)
def test_bad_files(tmp_path, text, message):
    """It explains empty, non-mapping and unparsable config files."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_cli_unknown_key_exit_2(runner, content, style, tmp_path):
    """It exits 2 with one Error: line for an unknown key in --config."""
    path = tmp_path / "c.yaml"
    path.write_text("style_wieght: 5\n")
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: unknown config key 'style_wieght' in config file {path}; "
                             "did you mean 'style_weight'?\n")
    assert not (tmp_path / "o.png").exists()


def test_cli_flag_out_of_range_exit_2(runner, content, style, tmp_path):
    """It exits 2 naming the key when a flag is out of range."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--steps", "-5"])
    assert result.exit_code == 2
    assert result.stderr == "Error: 'steps' must be at least 0, got '-5'\n"


def test_cli_missing_config_file(runner, content, style, tmp_path):
    """It exits 2 when --config points nowhere."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
