"""`nst train`'s checkpoint: what it records, which run it belongs to, and reading it back whole.

A checkpoint is continued only by the run that wrote it. Its fingerprint holds the loss's config keys
and the training settings, and identifies the inputs by what they are, not by their names: the style
image by its SHA-256 (a picture replaced under the same name is another style), the photos by their
names, sizes and modification times (hashing thousands of photos would cost more than it protects).
A run on changed inputs is refused, naming what changed, rather than finishing one network trained
on two styles or two datasets.

The file comes back from disk, so everything in it is checked before use: its kind (a folder named
checkpoint.pt), each entry's presence and type, the network's and the optimiser's tensors against the
network being built, the crop generator's state. Anything wrong is one ConfigError (exit 2) saying
to delete it, never an exception from the middle of training.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Sequence
from pathlib import Path

import torch

from nstcli import paths
from nstcli.errors import ConfigError, first_line
from nstcli import writes
from nstcli.digests import sha256_of

CHECKPOINT = "checkpoint.pt"
# Shown of each kind of change to the photos; the rest are counted.
NAMED_CHANGES = 3


def photo_listing(data: Path, files: Sequence[Path]) -> list[list]:
    """[name under `data`, size, modification time in ns] per training photo, in order."""
    rows = []
    for path in files:
        status = path.stat()
        rows.append([Path(path).relative_to(data).as_posix(), status.st_size, status.st_mtime_ns])
    return rows


def fingerprint(style: Path, listing: list[list], loss_keys: dict, settings: dict) -> dict:
    """What a checkpoint must match to be continued (JSON-safe: compared with what torch.load gives back)."""
    photos = hashlib.sha256(json.dumps(listing).encode("utf-8", "surrogateescape")).hexdigest()
    return json.loads(json.dumps({"style_sha256": sha256_of(style), "photos": photos, "images": len(listing),
                                  "config": loss_keys, "settings": settings}, default=list))


def save(folder: Path, state: dict) -> Path:
    """Write the checkpoint atomically: a failed write leaves the previous one whole."""
    import io

    # In memory first: torch's zip writer reports a failed write as a C++ assertion, not an OSError.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return writes.write_file(folder / CHECKPOINT, buffer.getbuffer(), elsewhere=None)


def _damaged(path: Path, what: str) -> ConfigError:
    return ConfigError(f"the checkpoint {path} is damaged ({what}); delete it to start over")


# Each entry a checkpoint holds and the type it must have.
ENTRIES = {"fingerprint": dict, "step": int, "net": dict, "optimiser": dict, "generator": torch.Tensor,
           "log": list, "photos": list}


def load(folder: Path, expected: dict, listing: list[list], style: Path, data: Path) -> dict | None:
    """The checkpoint in `folder` if there is one and it belongs to this run; ConfigError otherwise."""
    path = folder / CHECKPOINT
    found = paths.kind(path)
    if found == paths.MISSING:
        return None
    if found != paths.FILE:
        raise ConfigError(f"the checkpoint {path} is {found}, not a file; remove it to start over")
    try:
        # weights_only: tensors, numbers, strings and containers of them; nothing is unpickled as code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"the checkpoint {path} cannot be read ({exc.__class__.__name__}); delete it to start "
                          "over") from None
    if not isinstance(state, dict):
        raise _damaged(path, f"it holds a {type(state).__name__}, not a checkpoint")
    recorded = state.get("fingerprint")
    if not isinstance(recorded, dict):
        raise _damaged(path, "no record of the run it belongs to")
    style_changed = "style_sha256" in recorded and recorded["style_sha256"] != expected["style_sha256"]
    photos_changed = "photos" in recorded and recorded["photos"] != expected["photos"]
    changed = [f"the style image {style} has other contents"] if style_changed else []
    if photos_changed:
        changed.append(f"the photos in {data} changed ({_photo_changes(state.get('photos'), listing)})")
    if changed:
        again = "put the original back" if not photos_changed else "put them back"
        raise ConfigError(f"{path} was saved by a run on other inputs: {'; '.join(changed)}; {again} to continue, "
                          f"or delete {folder} to start over")
    if recorded != expected:
        differs = sorted(key for key in expected if recorded.get(key) != expected[key])
        raise ConfigError(f"{path} belongs to another training run (different {', '.join(differs) or 'settings'}); "
                          "run the same command to continue it, or delete the folder to start over")
    for key, kind in ENTRIES.items():
        if key not in state:
            raise _damaged(path, f"no '{key}'")
        if not isinstance(state[key], kind) or (kind is int and isinstance(state[key], bool)):
            raise _damaged(path, f"'{key}' is a {type(state[key]).__name__}, not a {kind.__name__}")
    if state["step"] < 0:
        raise _damaged(path, f"'step' is {state['step']}")
    for row in state["log"]:
        if not (isinstance(row, dict) and isinstance(row.get("step"), int)
                and all(isinstance(value, numbers.Real) for value in row.values())):
            raise _damaged(path, "its loss log has a row that is not numbers by name")
    return state


def restore(state: dict, path: Path, net: torch.nn.Module, optimiser: torch.optim.Optimizer,
            generator: torch.Generator) -> tuple[int, list[dict]]:
    """Load a checked checkpoint into the network, the optimiser and the crop generator: (step, log)."""
    def fit(what: str, load, value) -> None:
        try:
            load(value)
        except Exception as exc:  # missing or unexpected tensors, wrong shapes, non-tensors
            raise _damaged(path, f"{what} does not fit: {first_line(exc, 120)}") from None

    fit("its network", net.load_state_dict, state["net"])
    fit("its optimiser state", optimiser.load_state_dict, state["optimiser"])
    for group in optimiser.param_groups:
        for parameter in group["params"]:
            for name, value in optimiser.state.get(parameter, {}).items():
                if name != "step" and (not isinstance(value, torch.Tensor) or value.shape != parameter.shape):
                    raise _damaged(path, f"its optimiser's '{name}' does not fit the network")
    fit("its crop generator state", generator.set_state, state["generator"])
    return state["step"], list(state["log"])


def _photo_changes(recorded, listing: list[list]) -> str:
    """'a.png changed, b.png added, c.png removed' between a checkpoint's listing and today's."""
    try:
        before = {str(name): (size, mtime) for name, size, mtime in recorded}
    except (TypeError, ValueError):
        return "their listing in the checkpoint is unreadable"
    now = {name: (size, mtime) for name, size, mtime in listing}
    parts = []
    for label, names in (("changed", [n for n in now if n in before and now[n] != before[n]]),
                         ("added", [n for n in now if n not in before]),
                         ("removed", [n for n in before if n not in now])):
        parts += [f"{name} {label}" for name in names[:NAMED_CHANGES]]
        if len(names) > NAMED_CHANGES:
            parts.append(f"{len(names) - NAMED_CHANGES} more {label}")
    return ", ".join(parts) or "their order changed"
