"""What the commands share: options built from the config's field specs, building the config, checks
made before any computing, printing a result, the types of options."""

from __future__ import annotations

import json

import click

from nstcli import api
from nstcli.api import DEVICES, FAST_PRECISIONS, FIELDS, SPECS, flag_name, load_config, recipe_names

# Paths are plain text to click: nstcli checks them itself, with its own messages and exit codes
# (an unreadable image is a failed run, exit 1, and in a batch fails only its own items).
PATH = click.Path(readable=False)
OUTPUT_HELP = "Output image (.png .jpg .jpeg .webp .tif .tiff)."
PRECISION_CHOICE = click.Choice(FAST_PRECISIONS, case_sensitive=False)
DEVICE_CHOICE = click.Choice(DEVICES)


def _shown_default(name: str, shown: dict | None = None) -> str:
    default = (shown or {}).get(name, FIELDS[name].default)
    if default is None or isinstance(default, bool):  # "empty" is explained in the help; flags are off
        return ""
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    return f"  [default: {default}]"


# Keys whose flag may be given without a value, and what it then means.
GIVEN_ALONE = {"preserve_color": "luminance"}


def config_options(keys=None, shown=None):
    """Add one option per config key in `keys` (all when None): `--steps` <-> `steps:`.

    Each defaults to "not given", so a --config file's value stands unless the flag is typed; the
    help shows the key's own default, or the command's own from `shown` ({key: value}). A command
    lists only the keys it honours.
    """
    keys = list(FIELDS) if keys is None else list(keys)

    def decorate(function):
        for name in reversed(keys):
            spec = SPECS[name]
            flag = flag_name(name)
            text = spec.help + _shown_default(name, shown)
            if spec.type is bool:
                option = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=text)
            elif name in GIVEN_ALONE:
                # A value is optional: the flag alone means GIVEN_ALONE's, and a following option is
                # never taken for the value (`--preserve-color --steps 5`).
                option = click.option(flag, name, default=None, is_flag=False, flag_value=GIVEN_ALONE[name],
                                      metavar=spec.placeholder, help=f"{spec.help} Given alone: "
                                      f"{GIVEN_ALONE[name]}.{_shown_default(name, shown)}")
            else:
                option = click.option(flag, name, default=None, metavar=spec.placeholder, help=text)
            function = option(function)
        return click.option("--config", "config_file", type=click.Path(readable=False), default=None,
                            help="YAML file of config keys, or the name of a recipe shipped with nstcli ("
                                 f"{', '.join(recipe_names())}); flags override it.")(function)

    return decorate


def quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar on stderr.")(function)


def build_config(config_file, values: dict):
    given = {key: value for key, value in values.items() if key in FIELDS and value is not None}
    return load_config(config_file, given, from_flags=True)


def emit(result_summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result_summary))
    elif result_summary.get("output"):
        click.echo(result_summary["output"])


def check_before_computing(output: str, inputs, config) -> None:
    """What needs neither torch nor the network, checked first: a mistake costs no waiting.

    Usage errors in -o (a folder, an unknown extension, an input's own path) exit 2; inputs that
    cannot be read and a weights path that is not a file exit 1.
    """
    api.check_output_name(output)
    api.refuse_overwriting_inputs(output, inputs)
    for path in inputs:
        api.check_input_file(path)
    check_weights_path(config)


def check_weights_path(config) -> None:
    if config.weights not in api.NAMED:
        api.check_weights_file(config.weights)
