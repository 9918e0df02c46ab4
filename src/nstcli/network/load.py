"""The frozen VGG19 a run uses: which layers it needs, loaded once per process and reused."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from nstcli.network import weights as weights_module
from nstcli.network.sources import NAMED, canonical
from nstcli.reports import Callback
from nstcli.config.fields import Config
from nstcli.network.features import VGGFeatures
from nstcli.runtime import resolve_device, resolve_precision
from nstcli.config.layers import LAYER_INDEX, LAYER_NAMES


def layers_needed(config: Config) -> list[str]:
    return sorted(set(config.content_layers) | set(config.style_layers), key=LAYER_INDEX.__getitem__)


@functools.lru_cache(maxsize=4)
def _cached_network(weights: str, seed: int, pooling: str, padding: str, layers: tuple[str, ...],
                    device: str, convention: str = "auto", precision: str = "fp32") -> VGGFeatures:
    state, input_convention = weights_module.load_source(weights, seed=seed, convention=convention)
    network = VGGFeatures(state, layers, pooling=pooling, padding=padding, convention=input_convention,
                          precision=precision)
    return network.to(torch.device(device), memory_format=torch.channels_last)


def load_network(config: Config, device: torch.device | None = None, layers: Sequence[str] | None = None,
                 precision: str | None = None, callbacks: Sequence[Callback] = ()) -> VGGFeatures:
    """The frozen VGG19 trunk for `config` (or for `layers`), loaded once per process and reused.

    `precision` is the run's resolved precision (runtime.resolve_precision); None resolves
    `config.precision` on `device`. The network's `precision` attribute says which it got.
    `callbacks` hear the weights' download, when this machine has yet to fetch them (`on_download`).
    """
    device = device or resolve_device(config.device)
    precision = precision or resolve_precision(config.precision, device)
    weights = canonical(config.weights)
    if weights not in NAMED:
        weights = str(Path(weights).expanduser().resolve())
    # Random weights depend on the seed; loaded ones do not, so do not key the cache on it.
    seed = config.seed if weights == "random" else 0
    layers = tuple(layers) if layers is not None else tuple(layers_needed(config))
    weights_module.make_available(weights, callbacks)  # outside the cache: a run's watchers are no key
    return _cached_network(weights, seed, config.pooling, config.padding, layers, str(device),
                           config.input_convention, precision)


def min_side(config: Config, layers: Sequence[str] | None = None) -> int:
    """Smallest image side the deepest layer still sees as at least one position."""
    deepest = max(LAYER_INDEX[name] for name in (layers or layers_needed(config)))
    pools = sum(1 for name in LAYER_NAMES[:deepest] if name.startswith("pool"))
    return 2**pools
