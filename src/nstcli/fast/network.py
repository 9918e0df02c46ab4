"""The image transformation network of Johnson, Alahi & Fei-Fei (2016), with what is known since to
avoid its artefacts:

- instance normalisation instead of batch normalisation (Ulyanov, Vedaldi & Lempitsky 2017): the
  contrast of each image is normalised away, which is what stylisation wants and what lets one
  network serve photos of any brightness;
- reflection padding instead of zeros, so the borders are not darkened (the network never sees a
  black frame it would learn to paint over);
- upsampling followed by a convolution instead of a transposed convolution (Odena, Dumoulin & Olah
  2016, "Deconvolution and checkerboard artifacts"): a strided transposed convolution overlaps
  unevenly and leaves a checkerboard. The upsampling is bilinear: after a nearest-neighbour x2, a 3x3
  convolution meets (a, a, b) at even pixels and (a, b, b) at odd ones, two different effective
  kernels, and the networks trained that way learnt to use the difference as texture: a regular grid
  of period 2 and 4 px over the whole picture (the power at those frequencies was 100 to 200 times its
  neighbours' in `nst apply starry`'s output; benchmarks/README.md, "Built-in styles"). Bilinear
  weights vary smoothly with the position, so a parity texture costs the network a large kernel
  difference instead of none. Model files of format version 1 (before this) keep nearest, which
  their weights were trained for: `Architecture.upsample` is in every header.

Layout for `width` w: 9x9 conv (w) -> 3x3 stride 2 (2w) -> 3x3 stride 2 (4w) -> `blocks` residual
blocks (4w) -> upsample + 3x3 (2w) -> upsample + 3x3 (w) -> 9x9 conv to RGB. Johnson's network is
w = 32 with 5 blocks; the cost grows with w squared, so w = 16 is about a quarter of it.

Input and output are RGB images in [0, 1], (B, 3, H, W), any H and W (padded by reflection to a
multiple of 4 inside and cropped back). The last layer is linear: training sees unclamped values (a
clamp would stop the gradient at the edges of the range) and `stylize` clamps.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nstcli.errors import ConfigError

WIDTHS = (8, 16, 24, 32, 48, 64)
UPSAMPLES = ("bilinear", "nearest")
MAX_BLOCKS = 10
# Two stride-2 convolutions: sides that are multiples of this come back at the same size.
MULTIPLE = 4


@dataclass(frozen=True)
class Architecture:
    """What shapes the tensors of a model file: written into its header and checked on load."""

    width: int = 32
    blocks: int = 5
    upsample: str = "bilinear"

    def check(self) -> "Architecture":
        if self.upsample not in UPSAMPLES:
            raise ConfigError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {self.upsample!r}")
        if self.width not in WIDTHS:
            raise ConfigError(f"--width must be one of {', '.join(map(str, WIDTHS))}, got {self.width}")
        if not 1 <= self.blocks <= MAX_BLOCKS:
            raise ConfigError(f"--blocks must be 1 to {MAX_BLOCKS}, got {self.blocks}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


class InstanceNorm(nn.Module):
    """Instance normalisation with a learnt scale and shift, whose statistics can be fixed.

    Normally each image is normalised by its own per-channel mean and variance. A large image run in
    tiles would then normalise each tile by the tile's statistics and show seams; instead
    `record` keeps the statistics of a pass over the whole (downscaled) image and `use_recorded`
    normalises every tile by those (`apply.py`).
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.recording = False
        self.recorded: tuple[torch.Tensor, torch.Tensor] | None = None
        self.use_recorded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_recorded and self.recorded is not None:
            mean, var = self.recorded
            scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
            return (x - mean) * scale + self.bias.view(1, -1, 1, 1)
        if self.recording:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, unbiased=False)
            self.recorded = (mean.to(x.dtype), var.to(x.dtype))
        return F.instance_norm(x, weight=self.weight.to(x.dtype), bias=self.bias.to(x.dtype), eps=self.eps)


class ConvLayer(nn.Sequential):
    """Reflection padding, then a convolution (padding by reflection, not zeros)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride))


class ConvNormReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, upsample: str | None = None):
        layers: list[nn.Module] = []
        if upsample == "nearest":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif upsample is not None:
            layers.append(nn.Upsample(scale_factor=2, mode=upsample, align_corners=False))
        layers += [ConvLayer(c_in, c_out, kernel, stride), InstanceNorm(c_out), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + (conv, norm, relu, conv, norm)(x): no ReLU after the sum (He et al. 2016's identity mapping)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3), InstanceNorm(channels), nn.ReLU(inplace=True),
                                  ConvLayer(channels, channels, 3), InstanceNorm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _exporting() -> bool:
    # Only an export imports torch.onnx; asking it otherwise would import it (a tenth of a second
    # of every `nst apply`'s start-up).
    onnx = sys.modules.get("torch.onnx")
    return onnx is not None and onnx.is_in_onnx_export()


class TransformNet(nn.Module):
    """Image in [0, 1] -> stylised image (unclamped during training; `stylize` clamps)."""

    def __init__(self, architecture: Architecture = Architecture()):
        super().__init__()
        self.architecture = architecture.check()
        w = architecture.width
        self.down = nn.Sequential(ConvNormReLU(3, w, 9), ConvNormReLU(w, 2 * w, 3, 2), ConvNormReLU(2 * w, 4 * w, 3, 2))
        self.res = nn.Sequential(*(ResidualBlock(4 * w) for _ in range(architecture.blocks)))
        mode = architecture.upsample
        self.up = nn.Sequential(ConvNormReLU(4 * w, 2 * w, 3, upsample=mode), ConvNormReLU(2 * w, w, 3, upsample=mode))
        self.out = ConvLayer(w, 3, 9)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = (-height) % MULTIPLE, (-width) % MULTIPLE
        x = image
        if _exporting():
            # The exported graph takes any size: the pad is computed in the graph, not fixed at export.
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        elif pad_h or pad_w:
            # Reflection needs the pad to be smaller than the side; replicate covers tiny images.
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        x = self.out(self.up(self.res(self.down(x))))
        return x[..., :height, :width]

    def norms(self) -> list[InstanceNorm]:
        return [module for module in self.modules() if isinstance(module, InstanceNorm)]


class Clamped(nn.Module):
    """The network as it is applied and exported: output clamped to [0, 1]."""

    def __init__(self, net: TransformNet):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).clamp(0, 1)
