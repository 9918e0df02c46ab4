"""Every `monkeypatch.setattr(module, "name", ...)` in the tests patches a name the code really looks up there.

A patch on a module that only hands a name on (nstcli.api, say) intercepts nothing when the library
calls the name from where it lives: the test then passes without testing anything. So a patch counts
only if the patched module itself uses the name inside a function, or some module of nstcli reaches
it as `module.name` at run time. Read from the source with ast; nothing is imported.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
TESTS = ROOT / "tests"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST) -> dict[str, str]:
    """Local name -> nstcli module it is bound to, for `from nstcli.x import y [as z]` and `import nstcli.x as z`."""
    modules = {module_name(path) for path, _ in sources()}
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nstcli"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    bound[alias.asname] = alias.name
    return bound


@functools.cache
def sources() -> list[tuple[Path, ast.AST]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(SRC.rglob("*.py"))]


def looked_up(target: str, name: str) -> bool:
    """Whether `name` is looked up in module `target` when nstcli runs."""
    for path, tree in sources():
        if module_name(path) == target:
            for function in ast.walk(tree):
                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                           for n in ast.walk(function)):
                        return True
        for function in ast.walk(tree):
            # `from M import name` inside a function reads M.name when it runs, so a patch there intercepts.
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(isinstance(n, ast.ImportFrom) and n.module == target and any(a.name == name for a in n.names)
                       for n in ast.walk(function)):
                    return True
        aliases = {local for local, module in imported_modules(tree).items() if module == target}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.value, ast.Name)
                    and node.value.id in aliases):
                return True
    return False


def patches() -> list[tuple[str, int, str, str]]:
    """(test file, line, patched nstcli module, attribute) of every monkeypatch.setattr on an nstcli module."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = imported_modules(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setattr"
                    and len(node.args) >= 2):
                continue
            first, second = node.args[0], node.args[1]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("nstcli."):
                module, _, attribute = first.value.rpartition(".")
            elif isinstance(first, ast.Name) and first.id in bound and isinstance(second, ast.Constant):
                module, attribute = bound[first.id], second.value
            else:
                continue
            found.append((str(path.relative_to(ROOT)), node.lineno, module, attribute))
    return found


def test_patches_are_found():
    """The scan sees the tests' patches at all (a scan that finds none would pass whatever they patch)."""
    assert len(patches()) > 20


def test_every_patch_intercepts_a_lookup():
    stale = [f"{file}:{line}: {module}.{attribute}" for file, line, module, attribute in patches()
             if not looked_up(module, attribute)]
    assert stale == []
