"""The page's trained networks (nst train's model files): found in the folder `nst ui --models` names,
applied to the chosen photo in one pass. No Streamlit here, so it is tested without a browser."""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nstcli.errors import NSTError

# How `nst ui --models DIR` tells the page where the model files are.
MODELS_ENV = "NSTCLI_UI_MODELS"


@dataclass(frozen=True)
class Listed:
    label: str  # what the page shows: the style's name and the file's
    path: Path


def find_models(folder: str | os.PathLike | None) -> list[Listed]:
    """The readable model files directly in `folder`, sorted by name; files that are not models are left out."""
    from nstcli.fast.modelfile import read_header

    if not folder or not Path(folder).is_dir():
        return []
    found = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            info, _ = read_header(path)
        except NSTError:
            continue
        found.append(Listed(f"{info.style} ({path.name}, width {info.architecture.width})", path))
    return found


def apply_model(model: Path, content: Path, size: int | None, strength: float, preserve_color: bool,
                device) -> tuple[bytes, dict]:
    """(PNG bytes, a summary like stylize's) of `content` through `model`."""
    from nstcli.fast.apply import load_model, stylize_image
    from nstcli.image.io import load_image, tensor_to_pil

    started = time.perf_counter()
    net, info = load_model(model, device)
    photo = load_image(content, size)
    image = stylize_image(net, photo, strength=strength, preserve_color=preserve_color, device=device)
    buffer = io.BytesIO()
    tensor_to_pil(image).save(buffer, format="PNG")
    height, width = image.shape[-2:]
    return buffer.getvalue(), {"width": int(width), "height": int(height), "steps": 0,
                               "seconds": time.perf_counter() - started, "device": str(device),
                               "weights": f"trained network '{info.style}'"}
