"""The model file of a fast style network: safetensors, never a pickle.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's dtype,
shape and byte range, plus a string-to-string `__metadata__`), then the raw tensor bytes. Loading
one runs no code, unlike a pickled `torch.save` file. nstcli's metadata is one entry, `nstcli`,
holding a JSON object:

    {"format": "nstcli-fast-style", "version": 2,
     "architecture": {"width": 32, "blocks": 5, "upsample": "bilinear"},
     "style": "starry_night", "training": {...the settings of `nst train`...}}

Version 1 files have no `upsample`: their networks upsample by nearest neighbour, which their
weights were trained for, and they still load so (network.py says why new ones are bilinear).

The header is read and checked before any tensor is, so a file that is not a model (a photo, a
PyTorch checkpoint, a truncated download) is reported in one line naming what it looks like.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from nstcli import paths
from nstcli.errors import ModelError, first_line
from nstcli.fast import builtin
from nstcli.fast.network import Architecture

FORMAT = "nstcli-fast-style"
VERSION = 2
# What a file's architecture holds when its version predates the key.
ARCHITECTURE_BEFORE = {1: {"upsample": "nearest"}}
EXTENSION = ".safetensors"
# A model's JSON header is a few kilobytes; a larger declared length means this is not one.
MAX_HEADER = 1_000_000
# Storage formats of a model's tensors: nst train writes F32; the built-in styles are F16 (half the
# size; the network computes in fp32 or bf16 after loading either way).
DTYPES = ("F32", "F16", "BF16")
STORAGE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass
class ModelInfo:
    """What a model file's header says."""

    architecture: Architecture
    style: str
    training: dict = field(default_factory=dict)
    version: int = VERSION

    def header(self) -> dict:
        return {"format": FORMAT, "version": self.version, "architecture": self.architecture.as_dict(),
                "style": self.style, "training": self.training}


def _looks_like(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return " (it is a zip archive: a PyTorch .pt/.pth checkpoint? those are pickles and are not read)"
    if head.startswith(b"\x80") and len(head) > 1 and head[1] in (2, 3, 4, 5):
        return " (it is a Python pickle, which is never loaded: it could run code)"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"II*\x00", b"MM\x00*", b"BM")):
        return " (it is an image; the model comes first: nst apply MODEL INPUT -o OUT)"
    if head.startswith(b"\x08") or head[:4] == b"\x08\x07\x12\x05":
        return " (an ONNX file? nst apply reads the .safetensors model that nst train writes)"
    return ""


def read_header(path: str | os.PathLike) -> tuple[ModelInfo, dict]:
    """(ModelInfo, the safetensors tensor table) of a model file or built-in style, or ModelError saying why not."""
    path = builtin.locate(path)
    found = paths.kind(path)
    if found == paths.MISSING:
        if path.suffix or len(path.parts) > 1:
            raise ModelError(f"model {path} does not exist; check the path (nst train writes one)")
        raise ModelError(f"model {path} does not exist and is not a built-in style ({', '.join(builtin.names())}; "
                         "nst styles lists them); check the name or path")
    if found in (paths.FOLDER, paths.LOOP, paths.OTHER, paths.DENIED):
        raise ModelError(f"model {path} is {found}; give the .safetensors file that nst train wrote")
    not_model = f"{path} is not an nstcli style model"
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ModelError(f"{not_model} (only {size} bytes){_looks_like(head)}")
            (length,) = struct.unpack("<Q", head)
            if not 2 <= length <= min(MAX_HEADER, size - 8):
                raise ModelError(f"{not_model}{_looks_like(head + handle.read(8)) or ' (no safetensors header)'}")
            text = handle.read(length)
    except OSError as exc:
        raise ModelError(f"model {path} cannot be read ({exc.strerror or exc})") from None
    try:
        table = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ModelError(f"{not_model} (its safetensors header is not valid JSON)") from None
    metadata = table.get("__metadata__") if isinstance(table, dict) else None
    entry = metadata.get("nstcli", "null") if isinstance(metadata, dict) else "null"
    try:
        meta = json.loads(entry) if isinstance(entry, str) else entry
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{not_model}: it is a safetensors file without nstcli's model header (VGG19 weights "
                         "go to --weights, not here)")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise ModelError(f"model {path} has format version {version!r}; this nstcli reads version {VERSION} "
                         "and older: upgrade nstcli")
    problem = _table_problem(table) or _meta_problem(meta)
    if problem:
        raise ModelError(f"model {path} has a damaged header ({problem}); train it again")
    try:
        arch = Architecture(**{**ARCHITECTURE_BEFORE.get(version, {}), **meta["architecture"]}).check()
        info = ModelInfo(arch, meta.get("style", ""), dict(meta.get("training") or {}), version)
    except Exception as exc:
        raise ModelError(f"model {path} has a damaged header ({first_line(exc, 120)})") from None
    table.pop("__metadata__", None)
    odd = sorted(name for name, entry in table.items() if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES)
    if odd:
        found = table[odd[0]].get("dtype") if isinstance(table[odd[0]], dict) else None
        raise ModelError(f"model {path} stores {odd[0]} as {found!r}; a model's tensors are "
                         f"{', '.join(DTYPES)}: it is damaged or not from nst train")
    return info, table


def _table_problem(table) -> str | None:
    """What is wrong with a safetensors header's shape as JSON (None if nothing): the format's own rules."""
    if not isinstance(table, dict):
        return f"a JSON {type(table).__name__}, not an object"
    metadata = table.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return "__metadata__ is not an object of strings"
    for name, entry in table.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            return f"the entry of {name!r} is not an object"
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(entry.get("dtype"), str):
            return f"{name!r} has no dtype name"
        if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                for n in shape)):
            return f"{name!r} has shape {shape!r}, not a list of sizes"
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in offsets)):
            return f"{name!r} has data_offsets {offsets!r}, not two byte positions"
    return None


def _meta_problem(meta: dict) -> str | None:
    """What is wrong with nstcli's own entry as JSON types (None if nothing)."""
    architecture = meta.get("architecture")
    if not isinstance(architecture, dict):
        return f"architecture is {type(architecture).__name__}, not an object"
    if not all(isinstance(v, int) and not isinstance(v, bool) for k, v in architecture.items() if k != "upsample"):
        return "architecture's sizes are not whole numbers"
    if not isinstance(architecture.get("upsample", ""), str):
        return "architecture's upsample is not a string"
    if not isinstance(meta.get("style", ""), str):
        return "style is not a string"
    if not isinstance(meta.get("training") or {}, dict):
        return "training is not an object"
    return None


def save(path: str | os.PathLike, state: dict, info: ModelInfo, storage: str = "fp32", **how) -> Path:
    """Write `state` (the network's tensors, stored as `storage`: fp32, fp16 or bf16) and `info` atomically
    (`how`: writes.write_file's, what a failed write suggests)."""
    import torch
    from safetensors.torch import save as serialise

    from nstcli.writes import write_file

    dtype = getattr(torch, STORAGE[storage])
    tensors = {name: value.detach().to(dtype).cpu().contiguous() for name, value in state.items()}
    metadata = {"nstcli": json.dumps(info.header(), sort_keys=True)}
    # Serialised in memory (a model is a few MB): safetensors writing to a path itself reports a full
    # disk as its own SafetensorError; the bytes written here give the OSError.
    return write_file(Path(path), serialise(tensors, metadata=metadata), **how)


def load(path: str | os.PathLike, device="cpu"):
    """(TransformNet in eval mode on `device`, ModelInfo), or ModelError."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from nstcli.fast.network import TransformNet

    path = builtin.locate(path)
    info, table = read_header(path)
    # On the meta device: no memory and no random initialisation for weights the file replaces.
    with torch.device("meta"):
        net = TransformNet(info.architecture)
    expected = {name: tuple(value.shape) for name, value in net.state_dict().items()}
    found = {name: tuple(entry.get("shape", ())) for name, entry in table.items() if isinstance(entry, dict)}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        odd = sorted(name for name in set(expected) & set(found) if expected[name] != found[name])
        what = f"missing {missing[0]}" if missing else f"{odd[0]} has shape {found[odd[0]]}" if odd else "extra tensors"
        raise ModelError(f"model {path} does not match its own header ({what}); it is damaged: train it again")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"model {path} is damaged or truncated ({first_line(exc, 120)}); train it again") from None
    state = {name: value.float() for name, value in state.items()}
    # One check over all the weights: a check per tensor was 124 small parallel regions, most of the
    # load time of a small network on a busy machine (benchmarks/fast/fast_startup.py).
    if not torch.isfinite(torch.cat([value.flatten() for value in state.values()])).all():
        raise ModelError(f"model {path} holds non-finite weights; train it again (a lower --lr may help)")
    net.load_state_dict(state, assign=True)
    return net.to(device).eval().requires_grad_(False), info
