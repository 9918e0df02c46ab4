"""The frozen VGG19 a run uses: what it is made of (`NetworkSettings`), loaded once per process and reused."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nstcli.config.layers import LAYER_INDEX, LAYER_NAMES
from nstcli.network import weights as weights_module
from nstcli.network.features import VGGFeatures
from nstcli.network.sources import NAMED, canonical
from nstcli.reports import Callback


@dataclass(frozen=True)
class NetworkSettings:
    """What a run's network is made of (fields named as the config keys, but `layers`: the ones it computes)."""

    weights: str
    pooling: str
    padding: str
    input_convention: str
    seed: int  # of random weights; loaded weights ignore it
    layers: tuple[str, ...]


def layers_needed(loss) -> list[str]:
    """The layers a run's terms read (of anything with `content_layers` and `style_layers`), shallowest first."""
    return sorted(set(loss.content_layers) | set(loss.style_layers), key=LAYER_INDEX.__getitem__)


def min_side(layers: Sequence[str]) -> int:
    """Smallest image side the deepest of `layers` still sees as at least one position."""
    deepest = max(LAYER_INDEX[name] for name in layers)
    pools = sum(1 for name in LAYER_NAMES[:deepest] if name.startswith("pool"))
    return 2**pools


@functools.lru_cache(maxsize=4)
def _cached_network(weights: str, seed: int, pooling: str, padding: str, layers: tuple[str, ...],
                    device: str, convention: str = "auto", precision: str = "fp32") -> VGGFeatures:
    state, input_convention = weights_module.load_source(weights, seed=seed, convention=convention)
    network = VGGFeatures(state, layers, pooling=pooling, padding=padding, convention=input_convention,
                          precision=precision)
    return network.to(torch.device(device), memory_format=torch.channels_last)


def load_network(settings: NetworkSettings, device: torch.device, precision: str,
                 callbacks: Sequence[Callback] = ()) -> VGGFeatures:
    """The frozen VGG19 trunk `settings` describe on `device`, in the run's resolved `precision`
    (runtime.resolve_precision), loaded once per process and reused.

    `callbacks` hear the weights' download, when this machine has yet to fetch them (`on_download`).
    """
    weights = canonical(settings.weights)
    if weights not in NAMED:
        weights = str(Path(weights).expanduser().resolve())
    # Random weights depend on the seed; loaded ones do not, so do not key the cache on it.
    seed = settings.seed if weights == "random" else 0
    weights_module.make_available(weights, callbacks)  # outside the cache: a run's watchers are no key
    return _cached_network(weights, seed, settings.pooling, settings.padding, tuple(settings.layers), str(device),
                           settings.input_convention, precision)
