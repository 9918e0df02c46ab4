"""Every `nst ... --help` page, collected in a fresh process: `python tests/help_pages.py` prints JSON.

A fresh process, so the same run can say whether showing help imported torch (it must not: help is
instant). The pages are rendered 100 columns wide whatever the terminal, so the text is comparable.
"""

from __future__ import annotations

import json
import sys

import click
from click.testing import CliRunner

HEAVY = ("torch", "torchvision", "PIL", "yaml", "tqdm")


def command_paths(command: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command below `command`, groups included, in a stable order."""
    paths = [prefix]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            paths += command_paths(command.commands[name], prefix + (name,))
    return paths


def pages() -> dict[str, str]:
    from nstcli.cli import nst

    runner = CliRunner()
    found = {}
    for path in command_paths(nst):
        result = runner.invoke(nst, [*path, "--help"], prog_name="nst", terminal_width=100)
        found[" ".join(("nst",) + path)] = result.output
    return found


if __name__ == "__main__":
    collected = pages()
    collected["modules loaded"] = " ".join(name for name in HEAVY if name in sys.modules)
    json.dump(collected, sys.stdout, indent=1, sort_keys=True)
