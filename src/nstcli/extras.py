"""Optional packages (pip extras): importing one, and saying how to install it where nstcli came from.

Every command that needs an extra (video: PyAV and OpenCV; ui: Streamlit; export: onnx) fails the
same way when it is missing: `MissingPackage` (exit 1, like a missing weights package: the command
was typed right, the installation lacks something) with the pip command that works for this install.
`pip install 'nstcli[ui]'` only works where nstcli came from an index; from a checkout the extra is
installed from that folder, which pip records in the distribution's `direct_url.json` (PEP 610).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

from nstcli.errors import MissingPackage


def require(module: str, extra: str, what: str, package: str | None = None):
    """Import `module`, or raise MissingPackage: '`what` needs `package`, which is not installed; ...'."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackage(f"{what} needs {package or module}, which is not installed; install it with: "
                             f"{install_command(extra)}") from None


def install_command(extra: str) -> str:
    """The pip command that adds `extra` to this nstcli: from its checkout folder if it came from one."""
    try:
        text = importlib.metadata.distribution("nstcli").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        # Not installed at all: run from a source tree (PYTHONPATH=src); install it from there.
        root = Path(__file__).resolve().parents[2]
        if (root / "pyproject.toml").is_file():
            return f"pip install -e '{root}[{extra}]'"
        text = None
    try:
        origin = json.loads(text) if text else {}
    except ValueError:
        origin = {}
    url = urlparse(str(origin.get("url", "")))
    if url.scheme == "file" and isinstance(origin.get("dir_info"), dict):
        editable = "-e " if origin["dir_info"].get("editable") else ""
        return f"pip install {editable}'{unquote(url.path)}[{extra}]'"
    return f"pip install 'nstcli[{extra}]'"
