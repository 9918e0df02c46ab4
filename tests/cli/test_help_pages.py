"""`nst --help` and every command's `--help` are the committed pages, and showing them imports no torch.

tests/fixtures/help_pages.json was captured before the package was reorganised; a difference is either
a fix meant (then update the file with `python tests/help_pages.py > tests/fixtures/help_pages.json`
and say why in the commit) or a change of behaviour the move must not make.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]  # tests/: the capture script and its fixture
COMMITTED = json.loads((HERE / "fixtures" / "help_pages.json").read_text())


@pytest.fixture(scope="module")
def current() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "100"}
    out = subprocess.run([sys.executable, str(HERE / "help_pages.py")], capture_output=True, text=True,
                         check=True, env=env).stdout
    return json.loads(out)


@pytest.mark.e2e
def test_every_command_still_has_a_help_page(current):
    assert sorted(current) == sorted(COMMITTED)


@pytest.mark.e2e
@pytest.mark.parametrize("command", sorted(name for name in COMMITTED if name.startswith("nst")))
def test_help_page_unchanged(current, command):
    assert current[command] == COMMITTED[command]


@pytest.mark.e2e
def test_help_pages_import_no_heavy_module(current):
    """Every page was shown in one process that loaded none of torch, torchvision, PIL, yaml, tqdm."""
    assert current["modules loaded"] == ""
