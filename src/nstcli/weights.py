"""Where VGG19 weights come from: the only module that touches the network or the weights cache.

A weights spec is one of
- "imagenet": torchvision's VGG19 IMAGENET1K_V1 (548 MB), downloaded once and hash-checked; only
  its convolution layers (~80 MB) are kept in the cache, so later runs load a seventh of the bytes;
- "random": an untrained VGG19 (Kaiming-initialised like torchvision's, seeded), for tests and demos;
- a path to a .pth/.pt (read with `weights_only=True`, so a file cannot run code) or .safetensors
  file holding a torchvision VGG19 state dict or a features-only one.
Every loader returns a features-only state dict keyed like `vgg19().features` ("0.weight", ...).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from nstcli import paths
from nstcli.errors import RandomWeightsWarning, WeightsError, first_line
from nstcli.images import atomic_write
from nstcli.vgg_layers import CONV_SHAPES

if TYPE_CHECKING:  # torch is imported by the loaders only, so `nst weights path` answers at once
    import torch

# torchvision.models.VGG19_Weights.IMAGENET1K_V1; the 8 hex digits in the file name are the start of
# the file's SHA-256 (torch.hub's convention), which is what we verify.
IMAGENET_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_SHA256_PREFIX = "dcbb9e9d"
CACHE_FILE = "vgg19-imagenet-features.pth"
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


def warn_if_random(spec: str) -> None:
    """Say so on every run that uses an untrained network: never silently."""
    if spec == "random":
        warnings.warn("using an untrained VGG19 (--weights random): results are textures, not style "
                      "transfer; use for tests and demos only", RandomWeightsWarning, stacklevel=3)


def cache_dir() -> Path:
    """$NSTCLI_CACHE, else $XDG_CACHE_HOME/nstcli, else ~/.cache/nstcli."""
    if os.environ.get("NSTCLI_CACHE"):
        return Path(os.environ["NSTCLI_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nstcli"


def cached_path() -> Path:
    return cache_dir() / CACHE_FILE


def random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """An untrained VGG19 features state dict, initialised as torchvision does (Kaiming normal, fan_out)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, (c_in, c_out) in CONV_SHAPES.items():
        weight = torch.empty(c_out, c_in, 3, 3)
        std = (2.0 / (c_out * 9)) ** 0.5
        weight.normal_(0.0, std, generator=generator)
        state[f"{index}.weight"] = weight
        state[f"{index}.bias"] = torch.zeros(c_out)
    return state


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
    path = Path(path).expanduser()
    found = paths.kind(path)
    if found == paths.MISSING:
        raise WeightsError(f"weights file {path} does not exist; give a .pth/.pt/.safetensors file, "
                           "'imagenet' or 'random'")
    if found == paths.LOOP:
        raise WeightsError(f"weights file {path} is a symbolic link loop; point it at a .pth/.pt/.safetensors file")
    if found == paths.FOLDER:
        raise WeightsError(f"weights file {path} is a folder; give a .pth/.pt/.safetensors file")
    if found == paths.OTHER:
        # A FIFO would block the read forever and a device never ends.
        raise WeightsError(f"weights file {path} is not a regular file; give a .pth/.pt/.safetensors file")
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
    return features_only(state, f"weights file {path}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, destination: Path, progress: bool = True) -> None:
    """Download `url` to `destination` (a temporary file the caller owns). Tests replace this."""
    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        # The size only sizes the progress bar: a server's header that is no sensible byte count
        # (a word, thousands of digits beyond int()'s limit) leaves the bar without a total.
        length = (response.headers.get("Content-Length") or "").strip()
        total = int(length) if length.isascii() and length.isdigit() and len(length) <= 15 else None
        total = total or None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc="VGG19 weights", leave=False)
        for chunk in iter(lambda: response.read(1 << 20), b""):
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()


def _save_to_cache(state: dict[str, torch.Tensor], target: Path) -> None:
    import torch

    def cannot(exc: OSError) -> WeightsError:
        return WeightsError(f"cannot write the weights cache {target} ({exc.strerror or exc}); "
                            "set NSTCLI_CACHE to a writable folder")

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot(exc) from None
    atomic_write(target, lambda tmp: torch.save(state, tmp), error=cannot)


def download_imagenet(progress: bool = True) -> Path:
    """Download torchvision's VGG19, verify its hash, cache the features, delete the full file."""
    target = cached_path()
    help_text = (f"download {IMAGENET_URL} by other means and run 'nst weights import FILE', "
                 f"or use --weights PATH (cache: {target}); for an offline demo, --weights random "
                 "runs an untrained network (textures, not style transfer)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # The download goes beside the cache file, so an unwritable cache is found before 548 MB.
        handle, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".pth", dir=target.parent)
    except OSError as exc:
        raise WeightsError(f"cannot create the weights cache {target.parent} ({exc.strerror or exc}); "
                           "set NSTCLI_CACHE to a writable folder") from None
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        try:
            fetch(IMAGENET_URL, tmp, progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WeightsError(f"could not download VGG19 weights ({reason}); {help_text}") from None
        digest = sha256_of(tmp)
        if not digest.startswith(IMAGENET_SHA256_PREFIX):
            raise WeightsError(f"downloaded VGG19 weights have SHA-256 {digest[:8]}..., expected "
                               f"{IMAGENET_SHA256_PREFIX}... (corrupt or incomplete download); "
                               f"try again, or {help_text}")
        state = read_file(tmp)
        _save_to_cache(state, target)  # e.g. the disk filling up while writing is a WeightsError
    finally:
        tmp.unlink(missing_ok=True)
    return target


def import_file(path: str | os.PathLike) -> Path:
    """Verify a weights file and install its features into the cache (for offline machines)."""
    state = read_file(path)
    target = cached_path()
    _save_to_cache(state, target)
    return target


def load_state_dict(spec: str, seed: int = 0, progress: bool = True) -> dict[str, torch.Tensor]:
    """Resolve a weights spec to a features-only state dict."""
    if spec == "random":
        return random_state_dict(seed)
    if spec == "imagenet":
        target = cached_path()
        if not target.exists():
            download_imagenet(progress=progress)
        try:
            return read_file(target)
        except WeightsError as exc:
            raise WeightsError(f"{exc}. The cache is damaged: delete {target} and run "
                               "'nst weights fetch' again") from None
    return read_file(spec)


def describe(spec: str) -> str:
    """What a spec means, for --json output and the web page."""
    if spec in ("random", "imagenet"):
        return spec
    return str(Path(spec).expanduser())
