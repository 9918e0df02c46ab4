"""The page's trained networks (nst train's model files found in the folder `nst ui --models` names, and
the built-in styles), applied to the chosen photo in one pass. No Streamlit here, so it is tested without a browser."""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nstcli import api

# How `nst ui --models DIR` tells the page where the model files are.
MODELS_ENV = "NSTCLI_UI_MODELS"


@dataclass(frozen=True)
class Listed:
    label: str  # what the page shows: the style's name and the file's
    path: Path


def find_models(folder: str | os.PathLike | None) -> list[Listed]:
    """The readable model files directly in `folder`, sorted by name (files that are not models are left
    out), then nstcli's built-in styles."""
    found = []
    for path in sorted(Path(folder).glob("*.safetensors")) if folder and Path(folder).is_dir() else []:
        try:
            info, _ = api.read_model_header(path)
        except api.NSTError:
            continue
        found.append(Listed(f"{info.style} ({path.name}, width {info.architecture.width})", path))
    return found + [Listed(f"{style.name}: {style.describe()} (built-in)", style.path) for style in api.builtin_styles()]


def apply_model(model: Path, content: Path, size: int | None, strength: float, preserve_color: bool,
                device) -> tuple[bytes, dict]:
    """(PNG bytes, a summary like stylize's) of `content` through `model`."""
    started = time.perf_counter()
    image, info = api.apply_to_file(model, content, size=size, strength=strength, preserve_color=preserve_color,
                                    device=device)
    buffer = io.BytesIO()
    api.tensor_to_pil(image).save(buffer, format="PNG")
    height, width = image.shape[-2:]
    return buffer.getvalue(), {"width": int(width), "height": int(height), "steps": 0,
                               "seconds": time.perf_counter() - started, "device": str(device),
                               "weights": f"trained network '{info.style}'"}
