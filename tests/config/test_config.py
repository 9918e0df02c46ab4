"""Config loading: defaults < YAML < flags, and errors that name the key."""

import json
import os
from pathlib import Path

import pytest

from helpers import FAST, error_line
from nstcli.cli.main import nst
from nstcli.config.fields import Config, load_config
from nstcli.errors import ConfigError

RECIPES = Path(__file__).resolve().parents[2] / "configs"  # the shipped recipes
CONFIGS = sorted(RECIPES.glob("*.yaml"))


def config_error(path: Path, text: str | bytes) -> str:
    """The message of the ConfigError load_config raises for a config file `path` holding `text`."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_defaults_match_default_yaml():
    """It keeps configs/default.yaml identical to the dataclass defaults."""
    assert load_config(RECIPES / "default.yaml") == Config()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    """It loads every preset in configs/."""
    assert isinstance(load_config(path), Config)


def test_there_are_presets():
    """It ships at least the default and the seed presets."""
    assert {"default.yaml", "seed.yaml"} <= {p.name for p in CONFIGS}


def test_seed_preset_is_the_reports_setup():
    """It keeps the report's optimiser, learning rate, epochs and checkpoint interval."""
    config = load_config(RECIPES / "seed.yaml")
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
        ("loss_curve: maybe\n", "'loss_curve' must be true or false, got 'maybe'"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    """It rejects wrong types and out-of-range values, naming the key."""
    assert message in config_error(tmp_path / "c.yaml", text)


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
    """It exits 2 naming the flag when a flag is out of range."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--steps", "-5"])
    assert result.exit_code == 2
    assert result.stderr == "Error: --steps must be at least 0, got '-5'\n"


def test_cli_missing_config_file(runner, content, style, tmp_path):
    """It exits 2 when --config points nowhere."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps: true\n", "'steps' must be an integer, got True"),
        ("seed: 4294967296\n", "'seed' must be at most 4294967295, got 4294967296"),
        ("lr: " + "9" * 400 + "\n", "'lr' must be a number or empty, got <400-digit integer>"),
        ("content_weight: .inf\n", "'content_weight' must be a finite number, got inf"),
        ("style_layer_weights: [1, 1, 1, 1, .inf]\n",
         "'style_layer_weights' values must be finite, non-negative numbers, got [1, 1, 1, 1, inf]"),
        ("style_layers: [1, 2]\n", "'style_layers' must be a comma-separated list of VGG19 layer names, got [1, 2]"),
        ("content_layers: {relu4_2: 1}\n", "'content_layers' must be a comma-separated list of VGG19 layer names"),
        ("weights: \"a\\0b\"\n", "'weights' must be a string, got 'a\\x00b'"),
        ("size: [[1, [2, [3, [4]]]]]\n", "'size' must be an integer, got [[1, [...]]]"),
    ],
)
def test_more_bad_values_name_the_key(tmp_path, text, message):
    """It rejects booleans for numbers, overflowing numbers, inf, non-string layers and NUL bytes."""
    assert config_error(tmp_path / "c.yaml", text).startswith(message)


def test_long_values_are_shortened_in_messages(tmp_path):
    """It quotes at most a short preview of a huge bad value, so the error stays one readable line."""
    path = tmp_path / "c.yaml"
    error = config_error(path, "steps: " + "x" * 100_000 + "\n")
    assert error.startswith("'steps' must be an integer, got 'xxx")
    assert len(error.replace(str(path), "")) < 140


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:pathlib.PosixPath {{}}",
])
def test_more_python_tags_are_refused(tmp_path, tag):
    """It refuses every YAML tag that would import or build Python objects, running none of them."""
    marker = tmp_path / "pwned"
    path = tmp_path / "c.yaml"
    path.write_text("steps: " + tag.format(marker=marker) + "\n")
    with pytest.raises(ConfigError, match=f"config file {path} is not valid YAML at line 1, column 8: "):
        load_config(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"# only a comment\n\n", "is empty; write 'key: value' lines, e.g. 'steps: 300'"),
        (b"steps\n", "must be a mapping of keys to values (e.g. 'steps: 300'), not a str"),
        (b"steps: 3\n\xff\xfe\n", "is not UTF-8 text (byte 0xff at offset 9); save it as UTF-8"),
        (b"{[1]: 2}\n", "is not valid YAML at line 1, column 2: found unhashable key"),
    ],
)
def test_more_bad_files(tmp_path, content, message):
    """It explains comment-only, scalar, non-UTF-8 and unhashable-key files."""
    assert message in config_error(tmp_path / "c.yaml", content)


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path):
    """It lists the valid keys when no key is close to the unknown one."""
    path = tmp_path / "c.yaml"
    error = config_error(path, "zzzzzz: 1\n")
    assert error == (f"unknown config key 'zzzzzz' in config file {path}; valid keys: "
                     + ", ".join(Config.__dataclass_fields__))


def test_utf8_bom_is_accepted(tmp_path):
    """It reads a config saved with a byte-order mark, as some Windows editors do."""
    path = tmp_path / "c.yaml"
    path.write_bytes("\ufeffsteps: 7\n".encode("utf-8"))
    assert load_config(path).steps == 7


def test_oversized_file_is_refused_unparsed(tmp_path):
    """It refuses a config file larger than 1 MB without parsing it."""
    path = tmp_path / "c.yaml"
    path.write_text("# padding\n" * 110_000 + "steps: 3\n")
    with pytest.raises(ConfigError, match=f"config file {path} is larger than 1 MB; a config file is a few "):
        load_config(path)


@pytest.mark.parametrize("kind", [
    "folder", pytest.param("fifo", marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")), "non-utf8"])
def test_cli_config_folder_and_encoding(runner, content, style, tmp_path, kind):
    """It exits 2 with one Error: line when --config is a folder, a FIFO or not UTF-8."""
    if kind == "folder":
        path = tmp_path / "configs"
        path.mkdir()
        message = f"Error: config file {path} is a folder; give a .yaml file"
    elif kind == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)
        message = f"Error: config file {path} is not a regular file; give a .yaml file"
    else:
        path = tmp_path / "latin1.yaml"
        path.write_bytes("# réglages\nsteps: 3\n".encode("latin-1"))
        message = f"Error: config file {path} is not UTF-8 text (byte 0xe9 at offset 3); save it as UTF-8"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_flag_values_name_the_flag_and_yaml_values_the_key(runner, content, style, tmp_path):
    """It names --steps for a bad flag, and 'steps' with the file for a bad YAML value."""
    out = str(tmp_path / "o.png")
    flag = runner.invoke(nst, ["stylize", str(content), str(style), "-o", out, "--steps", "many"])
    assert flag.exit_code == 2
    assert error_line(flag) == "Error: --steps must be an integer, got 'many'"
    config = tmp_path / "c.yaml"
    config.write_text("start_size: tiny\n")
    yaml = runner.invoke(nst, ["stylize", str(content), str(style), "-o", out, "--config", str(config)])
    assert yaml.exit_code == 2
    assert error_line(yaml) == (f"Error: 'start_size' must be an integer or empty, got 'tiny' "
                                f"(in config file {config})")


def test_huge_integers_get_the_range_error(runner, content, style, tmp_path):
    """It answers a 5000-digit integer, from YAML or a flag, with the key's range error."""
    config = tmp_path / "c.yaml"
    error = config_error(config, "steps: " + "9" * 5000 + "\n")
    assert error == f"'steps' must be at most 10000000, got <5000-digit integer> (in config file {config})"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--seed", "-" + "1" * 5000])
    assert result.exit_code == 2
    assert error_line(result) == "Error: --seed must be at least 0, got <-5000-digit integer>"


def test_quiet_in_a_config_file_says_to_use_the_flag(tmp_path):
    """It refuses 'quiet:' in a config file, saying it is the --quiet flag now."""
    config = tmp_path / "c.yaml"
    error = config_error(config, "quiet: true\n")
    assert error == ("'quiet' is no longer a config key: whether a command draws progress bars is "
                     "the command's business; drop it from the file and give --quiet on the command "
                     f"line (config file {config})")


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text("first_steps: 1000\nstart_size: none\n")
    return path


def test_steps_on_the_command_line_wins_over_a_recipes_first_steps(runner, content, style, tmp_path):
    """It runs --steps 2 with a config setting first_steps: 1000, as the flag says."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST,
                                 "--steps", "2", "--config", str(_recipe(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 2


def test_first_steps_given_too_still_applies(runner, content, style, tmp_path):
    """It keeps --first-steps when given beside --steps (here 1 step at the only scale)."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST,
                                 "--steps", "2", "--first-steps", "1", "--config", str(_recipe(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 1


def test_shipped_recipe_is_found_by_name_from_anywhere(tmp_path, monkeypatch):
    """It reads --config wasserstein from the installed package when no such file is in the working folder."""
    from nstcli.config.fields import load_config
    from nstcli.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    shipped = RECIPES / "wasserstein.yaml"
    assert load_config("wasserstein") == load_config("wasserstein.yaml") == load_config(shipped)
    (tmp_path / "wasserstein").write_text("steps: 7\n")  # a file of that name comes first
    assert load_config("wasserstein").steps == 7
    with pytest.raises(ConfigError, match=r"^config file nothing\.yaml does not exist; check the path given to --config$"):
        load_config("nothing.yaml")
