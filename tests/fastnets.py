"""Helpers of the fast-network tests: a tiny model file without training, a folder of photos."""

from __future__ import annotations

from pathlib import Path

import torch

from helpers import make_image
from nstcli.config.fields import load_config
from nstcli.fast import modelfile
from nstcli.fast.network import Architecture, TransformNet
from nstcli.reports import Callback

TINY = Architecture(width=8, blocks=1)
# `nst train` flags for a run of a few seconds on generated 32 px crops with the untrained VGG19.
TRAIN_FAST = ["--weights", "random", "--batch-size", "2", "--crop-size", "32", "--width", "8", "--blocks", "1",
              "--quiet", "--preview-every", "0", "--style-layers", "relu1_1,relu2_1,relu3_1",
              "--content-layers", "relu2_1"]
# The config `nst train ... TRAIN_FAST` runs with, so a run made through the library is that command's.
TRAIN_CONFIG = load_config(None, {"weights": "random", "style_weight": 10, "style_layers": "relu1_1,relu2_1,relu3_1",
                                  "content_layers": "relu2_1"})


class StopAt(Callback):
    """Ctrl-C at a given training step, as a callback raising KeyboardInterrupt there."""

    def __init__(self, step):
        self.step = step

    def on_step(self, report):
        if report.step == self.step:
            raise KeyboardInterrupt


def tiny_model(path: Path, seed: int = 0, style: str = "tiny") -> Path:
    """A model file holding an untrained (randomly initialised) tiny network, with the instance norms
    given random scales and shifts so the output depends on them."""
    torch.manual_seed(seed)
    net = TransformNet(TINY)
    with torch.no_grad():
        for norm in net.norms():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    return modelfile.save(path, net.state_dict(), modelfile.ModelInfo(TINY, style, {"steps": 0}))


def photos(folder: Path, count: int, size=(64, 48), seed: int = 100) -> Path:
    for index in range(count):
        make_image(folder / f"photo_{index}.png", size=size, seed=seed + index)
    return folder
