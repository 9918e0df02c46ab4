"""Write the generated parts of docs/: the config reference table and every command's --help.

    python docs/generate.py          rewrite the generated blocks in place
    python docs/generate.py --check  exit 1 if a committed block differs from the code

A generated block sits between `<!-- generated: WHAT -->` and `<!-- end generated -->`; WHAT is
`config table`, `nst COMMAND --help` or `readme figure`. The first two come from what the CLI itself is
built from: the config table from `config/specs.py`'s specs and `config/fields.py`'s defaults, the
help from the click commands, rendered 100 columns wide; the README figure's caption comes from the
settings benchmarks/stylize/readme_figure.py recorded beside the figure. tests/project/test_docs.py
runs the check.
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


FIGURE_ALT = "The bundled cat and a rocket launch in the generated painting's style, with nst stylize's defaults"


def readme_figure() -> str:
    """The README's first figure and its caption, from the record benchmarks/stylize/readme_figure.py
    wrote beside it (before it is first made: the earlier comparison figure, said to be one)."""
    import json

    path = DOCS / "readme_figure.json"
    if not path.is_file():
        return ("![nstcli's previous defaults beside neural-style-pt](docs/real_weights.png)\n\n"
                "*`examples/content.jpg` and `examples/style.jpg` with nstcli's previous defaults (style weight 30, "
                "every style layer alike) beside neural-style-pt (`benchmarks/README.md`, \"Real weights\"). The "
                "figure of today's defaults is made by `python benchmarks/stylize/readme_figure.py`.*\n")
    return f"![{FIGURE_ALT}](docs/readme_figure.png)\n\n" + _caption(json.loads(path.read_text(encoding="utf-8")))


def _caption(record: dict) -> str:
    config = record["config"]
    pairs = " and ".join(f"`{run['content']}` x `{run['style']}`" for run in record["pairs"])
    judged = [run for run in record["pairs"] if "judge" in run]
    judge = ""
    if judged:
        judge = ("; under each result the judge's content / style error, "
                 + " and ".join(f"{run['judge']['content_error']:.2f} / {run['judge']['style_error']:.2f}"
                                for run in judged) + " (lower is better)")
    layers = config["style_layer_weights"]
    balance = (f"style layers {', '.join(config['style_layers'])}" +
               (" at their default weights" if layers is None else f" weighted {', '.join(map(str, layers))}"))
    if not config["start_size"]:
        scales = "at one scale"
    elif config.get("scales_from", "start") == "size":
        scales = (f"on scales halved from {config['size']} px down to no less than {config['start_size']} px"
                  if config["scale_factor"] == 2 else
                  f"on scales from {config['size']} px down by x{config['scale_factor']:g} to no less than "
                  f"{config['start_size']} px")
    else:
        scales = f"from {config['start_size']} px up by x{config['scale_factor']:g}"
    if config.get("taper_from"):
        scales += f" (later scales at most steps x {config['taper_from']} / side)"
    if config.get("stop_window") and config.get("stop_tolerance"):
        scales += (f", each ending once its loss fell by less than {100 * config['stop_tolerance']:g} % over "
                   f"{config['stop_window']} steps")
    optimizer = {"lbfgs": "L-BFGS", "adam": "Adam"}.get(config["optimizer"], config["optimizer"])
    seconds = " and ".join(f"{run['seconds']:.0f} s" for run in record["pairs"])
    cpu = record["machine"].split(",")[0]
    settings = ("`nst stylize`'s defaults" if not record["overrides"]
                else f"`nst stylize`'s defaults but {record['overrides']} (not what the README should show)")
    return (f"*{pairs} with {settings}: {config['size']} px, at most {config['steps']} {optimizer} steps per scale "
            f"{scales}, content weight {config['content_weight']:g} at {', '.join(config['content_layers'])}, "
            f"style weight {config['style_weight']:g} ({config['style_loss']}), {balance}, the {config['weights']} "
            f"VGG19{judge}. Made by `{record['made_by']}` ({seconds} of wall time on a shared {cpu}), which "
            "records every setting in `docs/readme_figure.json`; a test fails when they differ from the "
            "defaults.*\n")


def render(what: str) -> str:
    if what == "config table":
        return config_table()
    if what == "readme figure":
        return readme_figure()
    if what.startswith("nst ") and what.endswith(" --help"):
        return help_text(what)
    raise ValueError(f"unknown generated block {what!r}")


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("what")) + m.group(4), text)


def pages() -> list[Path]:
    candidates = [*DOCS.glob("*.md"), DOCS.parent / "README.md"]
    return sorted(path for path in candidates if BLOCK.search(path.read_text(encoding="utf-8")))


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
