"""The README a newcomer follows: install commands that work as written, tables that match behaviour."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_one_way_to_run_nst():
    """It activates the environment before the first nst command and never mixes in .venv/bin/nst."""
    lines = shell_lines()
    first_nst = next(i for i, line in enumerate(lines) if line.startswith("nst "))
    assert any(". .venv/bin/activate" in line for line in lines[:first_nst])
    assert ".venv/bin/nst" not in README


def test_cpu_only_install_is_shown_next_to_the_default_with_sizes():
    """It shows PyTorch's CPU wheel index before 'pip install .', and the size of either way."""
    lines = shell_lines()
    cpu = lines.index("pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu")
    assert lines[cpu + 1] == "pip install ."
    install = README[README.index("## Install"):README.index("## Usage")]
    assert "About 1 GB" in install and "about 5.5 GB" in install


def test_every_table_has_a_header():
    """It has no header-less table (rows pasted below another table after a blank line)."""
    for block in re.split(r"\n\s*\n", README):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len(rows) >= 2 and set(rows[1].replace("|", "").split()) <= {"---"}, rows[:2]


def test_exit_code_rows_appear_once():
    """It lists each exit code once in the errors table."""
    codes = re.findall(r"^\| (0|1|2|130) \|", README, flags=re.M)
    assert sorted(codes) == ["0", "1", "130", "2"]


def test_output_extensions_match_the_code():
    """It lists exactly the output extensions the code accepts."""
    from nstcli.image.io import OUTPUT_FORMATS

    assert f"`{' '.join(OUTPUT_FORMATS)}`" in README


def test_ci_runs_the_readmes_test_command_verbatim():
    """It keeps .ci/run and the README's second opening command the same line."""
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    opening = [line for line in shell_lines() if line.startswith("python3 -m venv .venv && ")][:2]
    assert "nst stylize examples/content.jpg examples/style.jpg" in opening[0]
    assert opening[1].endswith("python -m pytest") and opening[1] in ci.splitlines()
