"""The release: `python -m build` and `twine check` pass, and the wheel carries what a run and its
user need (the licence, the recipes --config names, the web page's examples)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # builds the release in processes of their own

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel built from a copy of the project (the build writes build/ and *.egg-info
    where it runs, which the working tree must not collect). Without isolation: offline, and the
    environment's setuptools is the one the tests run with."""
    pytest.importorskip("build")
    project = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = project / "dist"
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(project)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


def test_twine_check_passes(dist):
    """It builds an sdist and a wheel whose metadata and README render (twine check)."""
    pytest.importorskip("twine")
    files = sorted(str(path) for path in dist.iterdir())
    assert sorted(Path(name).suffix for name in files) == [".gz", ".whl"]
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_carries_licence_recipes_and_examples(dist):
    """It ships LICENSE (MIT), every recipe of configs/ and the page's example images with their sources."""
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        licence = next(name for name in names if name.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence).decode().startswith("MIT License")
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    recipes = {f"nstcli/config/recipes/{path.name}" for path in (ROOT / "configs").glob("*.yaml")}
    assert len(recipes) >= 5 and recipes <= names
    assert {"nstcli/ui/examples/content.jpg", "nstcli/ui/examples/style.jpg", "nstcli/ui/examples/SOURCES.md"} <= names
    styles = {f"nstcli/fast/styles/{path.name}" for path in (ROOT / "src/nstcli/fast/styles").iterdir()}
    assert "nstcli/fast/styles/starry.safetensors" in styles and "nstcli/fast/styles/SOURCES.md" in styles
    assert styles <= names


def test_readme_states_the_licences():
    """It names the code's licence, the weights' (the VGG authors' release, CC BY 4.0) and the examples' sources."""
    section = README[README.index("## Licence"):]
    assert "MIT" in section and "LICENSE" in section
    assert "CC BY 4.0" in section and "Simonyan" in section
    assert "examples/SOURCES.md" in section and "CC0" in section
