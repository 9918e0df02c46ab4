"""What the commands share: options built from the config's field specs, building the config, checks
made before any computing, printing a result, the types of options."""

from __future__ import annotations

import json

import click

from nstcli import api
from nstcli.api import FIELDS, IMAGE_FORMATS, SPECS, flag_name, load_config, recipe_names

# Paths are plain text to click: nstcli checks them itself, with its own messages and exit codes
# (an unreadable image is a failed run, exit 1, and in a batch fails only its own items).
PATH = click.Path(readable=False)
OUTPUT_HELP = "Output image (.png .jpg .jpeg .webp .tif .tiff)."


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


class FiniteFloat(click.ParamType):
    """A float option with a lower bound that also refuses nan and inf (FloatRange lets nan through:
    every comparison with it is false)."""

    name = "float"

    def __init__(self, minimum: float = 0.0):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{str(value)!r} is not a number", param, ctx)
        if not math.isfinite(number) or number < self.minimum:
            self.fail(f"{str(value)!r} is not a finite number of at least {self.minimum:g}", param, ctx)
        return number


def _click_type(spec):
    """The click type of a command setting's Spec: its range (shown in --help) or its choices."""
    if spec.choices:
        return click.Choice(spec.choices, case_sensitive=False)
    if spec.type is int:
        return click.IntRange(spec.minimum, spec.maximum)
    if spec.positive:
        return click.FloatRange(min=0, min_open=True)
    if spec.maximum is not None:
        return click.FloatRange(spec.minimum, spec.maximum, max_open=spec.below)
    return FiniteFloat(spec.minimum)


def setting_options(settings, unset=()):
    """One option per field of a command's settings (config/commands.py): `--batch-size` <-> batch_size.

    Each defaults to the field's default, shown in --help, except the fields in `unset`, which default
    to "not given" (None) so the command can tell whether the flag was typed.
    """
    import dataclasses

    def decorate(function):
        for field in reversed(dataclasses.fields(settings)):
            spec = field.metadata["spec"]
            flag = flag_name(field.name)
            if spec.type is bool:
                option = click.option(flag, field.name, is_flag=True, help=spec.help)
            elif field.name in unset:
                option = click.option(flag, field.name, type=_click_type(spec), default=None, metavar=spec.metavar,
                                      help=spec.help)
            else:
                option = click.option(flag, field.name, type=_click_type(spec), default=field.default,
                                      show_default=True, metavar=spec.metavar, help=spec.help)
            function = option(function)
        return function

    return decorate


def output_option(help_text: str = OUTPUT_HELP, dest: str = "output"):
    """-o/--output, which every command that writes requires (what it names is the command's help)."""
    return click.option("-o", "--output", dest, required=True, type=PATH, help=help_text)


def format_option(help_text: str):
    """--format: the output image format of a job writing into a folder."""
    return click.option("--format", "fmt", default="png", show_default=True,
                        type=click.Choice(IMAGE_FORMATS, case_sensitive=False), help=help_text)


def quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar on stderr.")(function)


def build_config(config_file, values: dict, defaults: dict | None = None):
    given = {key: value for key, value in values.items() if key in FIELDS and value is not None}
    return load_config(config_file, given, from_flags=True, defaults=defaults)


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
