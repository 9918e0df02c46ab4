"""The training loss and one training step: the perceptual loss of `nst stylize`, built from the same
terms by the same config keys (content and style layers and weights, style loss, total variation,
the VGG19 weights), on a batch of photo crops; and one Adam update of the network on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nstcli.config.fields import Config
from nstcli.fast.network import TransformNet
from nstcli.fast.precision import autocast
from nstcli.image.io import prepare
from nstcli.reports import Callback
from nstcli.terms.base import evaluate
from nstcli.terms.builder import content_term_of


class Perceptual:
    """The training loss: nstcli's terms on the frozen VGG19, averaged over a batch."""

    def __init__(self, config: Config, style: torch.Tensor, device: torch.device, precision: str = "fp32",
                 callbacks: Sequence[Callback] = ()):
        from nstcli.stylize.single_plan import load_network_for
        from nstcli.terms.objective import pixel_terms, style_term_for
        from nstcli.terms.settings import LossSettings

        from nstcli.errors import ConfigError

        if config.style_loss == "neighbours":
            # Its targets are searched for each image being painted: a network trained on crops has none.
            raise ConfigError("--style-loss neighbours matches each painted image's own positions and cannot "
                              "train a fast style network; use --style-loss gram or wasserstein")
        self.config = config
        self.loss = config.pick(LossSettings)
        self.device = device
        self.precision = precision
        # The run's precision, not config.precision: `nst train --precision fp32` means fp32 throughout.
        self.network = load_network_for(config, device, precision=precision, callbacks=callbacks)
        # No autocast here: VGG19 holds its own bf16 copy and hands back fp32 activations, so the Gram
        # matrices and every loss sum are fp32 (benchmarks/fast/fast_train_step.py measures what bf16 sums cost).
        self.style = style_term_for(self.loss, self.network, [prepare(style, device)], [1.0])
        self.pixels = pixel_terms(self.loss)

    def __call__(self, output: torch.Tensor, content: torch.Tensor):
        """(mean total, {term: mean value}) of `output` against `content`, both (B, 3, H, W)."""
        output = output.float()
        with torch.no_grad():
            # The photo's own features are needed only at the content layers: its pass stops there.
            targets = self.network(content, self.config.content_layers)
        features = self.network(output)
        batch = output.shape[0]
        total, values = None, {}
        # Terms are written for one image (the Wasserstein term refuses a batch, and the content term
        # is a mean over its own target): score each sample and average, which is the batch's mean.
        for i in range(batch):
            own = {name: targets[name][i:i + 1] for name in self.config.content_layers}
            # Normalised by this photo's own targets (loss_normalization), as stylize does per content image.
            content_term = content_term_of(self.loss, own)
            one = {name: value[i:i + 1] for name, value in features.items()}
            sample_total, sample_values = evaluate([content_term, self.style, *self.pixels], one,
                                                   output[i:i + 1].float())
            total = sample_total if total is None else total + sample_total
            for name, value in sample_values.items():
                values[name] = value if name not in values else values[name] + value
        return total.float() / batch, {name: value.float() / batch for name, value in values.items()}


def train_step(net: TransformNet, optimiser: torch.optim.Optimizer, loss: Perceptual, batch: torch.Tensor,
               precision: str):
    """One update on `batch`: (the network's output, the mean loss, its terms).

    Under bf16 only the transformation network's convolutions autocast: its weights and Adam's
    moments stay fp32 (stored in bf16, weights above about 0.25 in size would not move by an Adam
    step of lr 1e-3), and the loss is summed in fp32 (in bf16 a Gram loss near its optimum is off by
    several times its value): benchmarks/fast/fast_train_step.py measures both. A non-finite loss is not
    stepped on: the caller stops.
    """
    # The crops arrive channels_last (image/io.py's prepare), which VGG19 wants. The transformation network
    # took 0.76 x the time in that layout in fp32 but 1.5 x in bf16 autocast (benchmarks/fast/fast_train_step.py):
    # under bf16 it gets them in the standard layout.
    with autocast(batch.device, precision):
        out = net(batch.contiguous() if precision == "bf16" else batch)
    total, values = loss(out, batch)
    if torch.isfinite(total.detach()):
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
    return out, total, values

