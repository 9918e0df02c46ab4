"""The docs cannot drift from the code: generated blocks match it, links resolve, the README stays short."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs"))

import generate  # noqa: E402  (docs/generate.py)

PAGES = sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("page", generate.pages(), ids=lambda path: path.name)
def test_generated_blocks_match_the_code(page):
    """Each config table and --help block is what `python docs/generate.py` writes from the code today."""
    text = page.read_text(encoding="utf-8")
    assert generate.regenerate(text) == text, f"run python docs/generate.py ({page.name} is out of date)"


def test_every_command_has_its_help_in_the_docs():
    from help_pages import command_paths

    from nstcli.cli import nst

    documented = {m.group("what") for page in generate.pages()
                  for m in generate.BLOCK.finditer(page.read_text(encoding="utf-8"))}
    commands = {" ".join(("nst", *path)) + " --help" for path in command_paths(nst)
                if path and not path == ("reconstruct",) and not path == ("weights",)}
    assert sorted(commands - documented) == []
    assert "config table" in documented


def test_a_changed_spec_is_caught(monkeypatch):
    """The check can fail: a help text changed in the code no longer matches the committed table."""
    from nstcli.config import fields

    page = ROOT / "docs" / "config.md"
    spec = fields.SPECS["steps"]
    monkeypatch.setitem(fields.SPECS, "steps", type(spec)(**{**spec.__dict__, "help": "Changed."}))
    text = page.read_text(encoding="utf-8")
    assert generate.regenerate(text) != text


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda path: path.name)
def test_relative_links_resolve(page):
    """Every relative link of the README and docs/ names a file that exists (anchors aside)."""
    text = page.read_text(encoding="utf-8")
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target and not (page.parent / target).exists():
            missing.append(target)
    assert missing == []
