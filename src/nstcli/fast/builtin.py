"""The styles that ship with nstcli: small networks trained by `nst train`, taken by name wherever a
model file is (`nst apply starry photo.jpg`, `nst video --model starry`, `nst export`, the web page).

Each is an ordinary model file in `styles/` (package data), stored in fp16 to halve its size, and is
read by `modelfile` with the same checks as any other. A path that exists always wins over a name, so
a file called `starry` in the current folder is still that file. How each was trained, on which
photos, and the licences: docs/fast.md, "Built-in styles", and `styles/SOURCES.md`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "styles"


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    painting: str
    artist: str
    year: int

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.safetensors"

    def describe(self) -> str:
        return f"{self.painting} ({self.artist}, {self.year})"


# Paintings in the public domain (their painters died more than 70 years ago, and they were published
# before 1929): the networks may be shipped.
CATALOGUE = (
    BuiltinStyle("starry", "The Starry Night", "Vincent van Gogh", 1889),
    BuiltinStyle("scream", "The Scream", "Edvard Munch", 1893),
    BuiltinStyle("shipwreck", "The Shipwreck", "J. M. W. Turner", 1805),
)


def available() -> list[BuiltinStyle]:
    """The built-in styles whose network is installed, in catalogue order."""
    return [style for style in CATALOGUE if style.path.is_file()]


def names() -> list[str]:
    return [style.name for style in available()]


def find(name: str) -> BuiltinStyle | None:
    return next((style for style in available() if style.name == name), None)


def locate(model: str | os.PathLike) -> Path:
    """The file `model` names: itself if it exists, else the built-in style of that name, else as given
    (whose absence the caller reports)."""
    path = Path(model)
    if os.path.lexists(path):
        return path
    style = find(str(model))
    return style.path if style is not None else path
