"""One way of labelling option values in every command's --help, whoever declared the option.

Options built from config keys carry their own placeholders (`--steps N`, `--content-weight X`,
`--device auto|cpu|cuda|mps`); options declared with a click type directly would otherwise show click's
internal names (`INTEGER RANGE`, `FLOAT RANGE`, `[8|16|32]`). Applied once to the whole command tree.
"""

from __future__ import annotations

import click


def label(parameter: click.Parameter) -> str | None:
    """The placeholder for an option of this type: N for whole numbers, X for numbers, a|b|c for choices."""
    kind = parameter.type
    if isinstance(kind, click.Choice):
        return "|".join(map(str, kind.choices))
    if isinstance(kind, (click.IntRange, click.types.IntParamType)):
        return "N"
    if isinstance(kind, (click.FloatRange, click.types.FloatParamType)):
        return "X"
    return None


def plain_labels(command: click.Command) -> click.Command:
    """Give every option of `command` (and of its subcommands) without a placeholder of its own one of ours."""
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.is_flag and parameter.metavar is None:
            parameter.metavar = label(parameter)
    for sub in getattr(command, "commands", {}).values():
        plain_labels(sub)
    return command
