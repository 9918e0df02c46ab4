"""VGG19 feature extractor addressed by layer name (conv1_1 ... pool5)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nstcli.network.conventions import TORCHVISION, InputConvention
from nstcli.runtime import dtype_of
from nstcli.config.layers import CONV_SHAPES, LAYER_INDEX, LAYER_NAMES, check_layers


class VGGFeatures(nn.Module):
    """VGG19's convolutional trunk, cut after the deepest layer asked for, frozen and in eval mode.

    Input: RGB images in [0, 1], shape (B, 3, H, W); the weights' input convention (channel order,
    pixel range, mean, std: `conventions.py`) is applied inside, so callers never know which network
    they run. `forward(x)` returns {layer name: activation} for the layers given at construction.

    The channel order, the pixel range and the std are linear maps of each channel, so they are folded
    into conv1_1's weights; the mean is not. Folding the mean into the bias would change what the zero
    padding means: the network was trained seeing zeros beyond the border *after* the mean was
    subtracted (a mean-coloured border), and a folded bias would show it black pixels instead. Here the
    mean is subtracted from the image, the padding then adds the same zeros as in training, and the
    output equals the explicit preprocessing up to float rounding, borders included (tested).

    `precision` ("fp32", "bf16", "fp16"; runtime.resolve_precision decides it) is the format the
    convolutions compute in. The network then holds its weights in that format and casts the
    mean-subtracted input down once; every activation it returns is cast back to float32, so the
    loss terms never see anything else and the optimised image's gradient arrives in float32.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor], layers: Iterable[str], pooling: str = "max",
                 padding: str = "zeros", convention: InputConvention = TORCHVISION, precision: str = "fp32"):
        super().__init__()
        self.layers = list(check_layers(layers, "the layers asked of VGG19"))
        last = max(LAYER_INDEX[name] for name in self.layers)
        modules: list[nn.Module] = []
        for index, name in enumerate(LAYER_NAMES[: last + 1]):
            if name.startswith("conv"):
                c_in, c_out = CONV_SHAPES[index]
                # On the meta device: no memory and no random initialisation for weights that the
                # state dict replaces right away (that initialisation was half of the load time).
                # `padding` applies to the first convolution only, as in crowsonkb/style-transfer-pytorch:
                # zero padding there darkens the image's border (the network sees black beyond it),
                # and the optimiser answers with bright edge artefacts; replicating the edge pixels
                # removes the cause. Deeper layers see features, where zeros mean "nothing here".
                mode = padding if index == 0 else "zeros"
                modules.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, padding_mode=mode, device="meta"))
            elif name.startswith("relu"):
                # In place saves a copy per layer, except where the conv output before it is returned.
                modules.append(nn.ReLU(inplace=LAYER_NAMES[index - 1] not in self.layers))
            elif pooling == "avg":
                modules.append(nn.AvgPool2d(kernel_size=2, stride=2))
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.body = nn.Sequential(*modules)
        wanted = {k: v for k, v in state_dict.items() if int(k.split(".")[0]) <= last}
        wanted["0.weight"] = _fold_input(wanted["0.weight"], convention)
        self.body.load_state_dict(wanted, strict=True, assign=True)
        self.convention = convention
        self.register_buffer("offset", torch.tensor(convention.rgb_offset()).view(1, 3, 1, 1))
        self._wanted = {LAYER_INDEX[name]: name for name in self.layers}
        self.precision = precision
        # A converted copy rather than autocast: the same speed where bf16 is native (within 1 %),
        # and autocast would convert the 20 million frozen weights again at every forward
        # (benchmarks/README.md, "Precision").
        self.body.to(dtype_of(precision))
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = image - self.offset
        low = self.precision != "fp32"
        if low:
            x = x.to(self.body[0].weight.dtype)
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.body):
            x = module(x)
            name = self._wanted.get(index)
            if name is not None:
                out[name] = x.float() if low else x
        return out

    def train(self, mode: bool = True) -> "VGGFeatures":
        # Frozen means frozen: there is no dropout or batch norm here, but keep eval() semantics.
        return super().train(False)


def _fold_input(weight: torch.Tensor, convention: InputConvention) -> torch.Tensor:
    """conv1_1's kernel acting on (RGB image - offset): channel order and gain moved into the weights."""
    folded = torch.zeros_like(weight, dtype=torch.float32)
    for c, (source, gain) in enumerate(convention.input_gain()):
        folded[:, source] += weight[:, c].float() * gain
    return folded
