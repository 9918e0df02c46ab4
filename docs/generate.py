"""Write the generated parts of docs/: the config reference table and every command's --help.

    python docs/generate.py          rewrite the generated blocks in place
    python docs/generate.py --check  exit 1 if a committed block differs from the code

A generated block sits between `<!-- generated: WHAT -->` and `<!-- end generated -->`; WHAT is
`config table` or `nst COMMAND --help`. Both come from what the CLI itself is built from: the config
table from `config/specs.py`'s specs and `config/fields.py`'s defaults, the help from the click
commands, rendered 100 columns wide. tests/project/test_docs.py runs the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BLOCK = re.compile(r"(<!-- generated: (?P<what>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _default(value) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _values(spec) -> str:
    if spec.choices:
        return ", ".join(f"`{choice}`" for choice in spec.choices)
    bounds = []
    if spec.minimum is not None:
        bounds.append(f"{'>' if spec.positive else '>='} {_number(spec.minimum)}")
    if spec.maximum is not None:
        bounds.append(f"<= {_number(spec.maximum)}")
    text = spec.expected + (f" ({', '.join(bounds)})" if bounds else "")
    return text


def config_table() -> str:
    """Every config key: its flag, default, the values it takes and its help, as the CLI shows them."""
    from nstcli.config.fields import FIELDS, SPECS, flag_name

    rows = ["| key | flag | default | values | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, field in FIELDS.items():
        spec = SPECS[name]
        meaning = spec.help.replace("|", "\\|")
        rows.append(f"| `{name}` | `{flag_name(name)}` | `{_default(field.default)}` | "
                    f"{_values(spec).replace('|', chr(92) + '|')} | {meaning} |")
    return "\n".join(rows) + "\n"


def help_text(command: str) -> str:
    """`nst ... --help` as a fenced block, 100 columns wide."""
    from click.testing import CliRunner

    from nstcli.cli import nst

    args = command.split()[1:-1]  # "nst batch --help" -> ["batch"]
    result = CliRunner().invoke(nst, [*args, "--help"], prog_name="nst", terminal_width=100)
    return "```text\n" + result.output.rstrip() + "\n```\n"


def render(what: str) -> str:
    if what == "config table":
        return config_table()
    if what.startswith("nst ") and what.endswith(" --help"):
        return help_text(what)
    raise ValueError(f"unknown generated block {what!r}")


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("what")) + m.group(4), text)


def pages() -> list[Path]:
    return sorted(path for path in DOCS.glob("*.md") if BLOCK.search(path.read_text(encoding="utf-8")))


def main(argv: list[str]) -> int:
    stale = []
    for path in pages():
        text = path.read_text(encoding="utf-8")
        fresh = regenerate(text)
        if fresh != text:
            stale.append(path.name)
            if "--check" not in argv:
                path.write_text(fresh, encoding="utf-8")
    if stale and "--check" in argv:
        print(f"out of date: {', '.join(stale)}; run python docs/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
