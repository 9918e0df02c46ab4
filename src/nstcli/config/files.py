"""Config files: YAML read safely and bounded, and the recipes shipped with nstcli (config/recipes/)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from nstcli import paths
from nstcli.config.parse import HugeInteger
from nstcli.errors import ConfigError, first_line


# A config is a few lines; anything much larger is not one (and would be slow to parse).
MAX_CONFIG_BYTES = 1_000_000


@functools.lru_cache(maxsize=1)
def _yaml_loader():
    """PyYAML's safe loader, except that an integer too long for int() is kept as a HugeInteger."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def integer(loader, node):
        try:
            return yaml.SafeLoader.construct_yaml_int(loader, node)
        except ValueError:  # beyond Python's 4300-digit limit: let the key's range check report it
            return HugeInteger(loader.construct_scalar(node))

    Loader.add_constructor("tag:yaml.org,2002:int", integer)
    return Loader


# The recipes shipped inside the package (configs/ in the repository is the same folder), so that an
# installed nstcli can be pointed at them by name: --config wasserstein.
RECIPES = Path(__file__).resolve().parent / "recipes"


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def _recipe(path: Path) -> Path | None:
    """The shipped recipe a bare name (wasserstein, or wasserstein.yaml) stands for, if any."""
    text = os.fspath(path)
    if os.sep in text or "/" in text or path.suffix not in ("", ".yaml"):
        return None
    candidate = RECIPES / f"{path.stem if path.suffix else path.name}.yaml"
    return candidate if candidate.is_file() else None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file: a YAML mapping of keys to values. Only plain YAML (safe_load).

    A file of that name is read first; a bare name that is no file names a shipped recipe.
    """
    import yaml

    path = Path(path)
    if paths.kind(path) == paths.MISSING and _recipe(path) is not None:
        path = _recipe(path)
    paths.check_file(path, ConfigError, {
        paths.MISSING: "config file {path} does not exist; check the path given to --config",
        paths.LOOP: "config file {path} is a symbolic link loop; give a .yaml file",
        paths.FOLDER: "config file {path} is a folder; give a .yaml file",
        paths.OTHER: "config file {path} is not a regular file; give a .yaml file"})
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1_000_000} MB; a config "
                          "file is a few 'key: value' lines")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: editors on Windows start files with a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # safe: only plain YAML types are built
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    except Exception as exc:
        # PyYAML's constructors let Python's own errors through for values they half-parsed: a date
        # like 2020-13-45, an integer beyond 4300 digits, brackets nested thousands deep.
        raise ConfigError(f"config file {path} is not valid YAML: {first_line(exc, 120)}") from None
    if data is None:
        raise ConfigError(f"config file {path} is empty; write 'key: value' lines, e.g. 'steps: 300'")
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must be a mapping of keys to values (e.g. 'steps: 300'), "
            f"not a {type(data).__name__}")
    return data
