"""The package's layout holds: families stacked one way, no import cycle, every module described.

Read from the source with ast (nothing is imported), so a function-level import counts like any other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "nstcli"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"

# Bottom to top: a module may import its own family and the families below it, never one above.
# The base is what every family uses (errors, paths, outputs, writes, runtime, reports, extras, digests).
FAMILIES = ["base", "image", "jobs", "config", "network", "terms", "optim", "tiling", "stylize", "video", "fast",
            "api", "ui", "cli", "__main__"]
BASE = {"__init__", "errors", "paths", "outputs", "writes", "runtime", "reports", "extras", "digests"}


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def family(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    name = parts[1]
    return "base" if name in BASE else name


def imports(module: str) -> set[str]:
    """The nstcli modules `module` imports, anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nstcli":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    return found - {module}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_belongs_to_a_family():
    assert sorted({family(module) for module in MODULES} - set(FAMILIES)) == []


def test_no_import_runs_up_the_families():
    up = [f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
          if FAMILIES.index(family(target)) > FAMILIES.index(family(module))]
    assert up == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle that a depth-first walk meets (at least one per strongly connected knot)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    """A check that could never fail would prove nothing: a loop of three is reported."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_every_module_is_named_in_the_architecture():
    """docs/ARCHITECTURE.md names every module by its path under src/nstcli (e.g. `stylize/single.py`)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    paths = {str(path.relative_to(PACKAGE)) for path in MODULES.values()}
    assert sorted(paths - named) == []
    assert sorted(path for path in named - paths if not path.startswith(("tests/", "benchmarks/"))) == []


SKINS = ("cli", "ui")


def past_the_api(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a skin (cli/, ui/) into the library that do not go through nstcli.api."""
    allowed = {"nstcli", "nstcli.api"}  # the package itself hands on only its version
    return sorted(f"{module} -> {target}" for module, targets in graph.items() if family(module) in SKINS
                  for target in targets if family(target) not in SKINS and target not in allowed)


def test_the_skins_call_the_library_only_through_the_api():
    assert past_the_api(GRAPH) == []


def test_a_skin_reaching_past_the_api_is_reported():
    graph = {"nstcli.cli.batch": {"nstcli.api", "nstcli.stylize.batch", "nstcli.cli.options"},
             "nstcli.ui.app": {"nstcli.errors"}, "nstcli.video.loop": {"nstcli.stylize.single"}}
    assert past_the_api(graph) == ["nstcli.cli.batch -> nstcli.stylize.batch", "nstcli.ui.app -> nstcli.errors"]


# The whole Config travels no further than stylize/: each family below receives the settings it reads.
BELOW_STYLIZE = ("base", "image", "jobs", "network", "terms", "optim", "tiling")


def taking_the_config(graph: dict[str, set[str]]) -> list[str]:
    """Modules below stylize/ that import config/fields.py (the whole Config), outside config/ itself."""
    return sorted(f"{module} -> nstcli.config.fields" for module, targets in graph.items()
                  if family(module) in BELOW_STYLIZE and "nstcli.config.fields" in targets)


def test_no_module_below_stylize_takes_the_whole_config():
    assert taking_the_config(GRAPH) == []


def test_a_lower_module_taking_the_config_is_reported():
    graph = {"nstcli.network.load": {"nstcli.config.fields"}, "nstcli.stylize.single_plan": {"nstcli.config.fields"},
             "nstcli.config.parse": {"nstcli.config.specs"}}
    assert taking_the_config(graph) == ["nstcli.network.load -> nstcli.config.fields"]
