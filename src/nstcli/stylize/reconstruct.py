"""The paper's reconstruction figures (Gatys et al. 2016, Fig. 1): what a layer keeps of an image.

Start from white noise and optimise only a content term at one layer, or only a style term over a
set of layers: what comes back is all those layers constrain. `all_layers` runs the whole figure
(every layer, or every growing subset) and writes one labelled sheet, input first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch

from nstcli.network.sources import warn_if_random
from nstcli.optim.callbacks import check_checkpoint_folder, replaced_beside
from nstcli.config.fields import Config
from nstcli.optim.engine import optimize
from nstcli.reports import Callback
from nstcli.errors import ConfigError
from nstcli.image.io import atomic_write, check_output_path, open_image, output_format, pil_to_tensor, prepare
from nstcli.image.io import refuse_overwriting_inputs, save_image, tensor_to_pil
from nstcli.network.load import load_network, min_side
from nstcli.terms.builder import reconstruction_term
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.optim.run import Run, RunSettings, StylizeResult, out_of_memory_as_run_error
from nstcli.runtime import resolve_device, resolve_precision
from nstcli.stylize.sizes import fit_to_size
from nstcli.terms.settings import LossSettings
from nstcli.config.layers import LAYER_INDEX, check_layers

PathLike = str | os.PathLike
# Content reconstructed from each block's first convolution, style from growing sets of them.
FIGURE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _reconstruct_one(kind: str, image: torch.Tensor, layers: Sequence[str], config: Config,
                     device: torch.device, precision: str, run: Run, first_step: int, total: int) -> torch.Tensor:
    network = load_network(config, device, layers=sorted(layers, key=LAYER_INDEX.__getitem__), precision=precision,
                           callbacks=run.watchers)
    term = reconstruction_term(kind, config.pick(LossSettings), network, image, layers)
    # White noise start, as in the paper's figure: what the layers constrain is all that comes back.
    generator = torch.Generator().manual_seed(config.seed)
    init = torch.rand(image.shape, generator=generator).to(device)
    settings = OptimizerSettings(config.optimizer, config.learning_rate, tuple(config.adam_betas))
    return optimize(network, init, [term], settings, steps=config.steps, callbacks=run.watchers,
                    first_step=first_step, total_steps=total).image


def figure_runs(kind: str, layers: Sequence[str] | None, all_layers: bool) -> list[list[str]]:
    """The layer set of every reconstruction to run."""
    if kind not in ("content", "style"):
        raise ConfigError(f"reconstruct what? 'content' or 'style', not {kind!r}")
    if all_layers:
        return ([[name] for name in FIGURE_LAYERS] if kind == "content"
                else [list(FIGURE_LAYERS[: i + 1]) for i in range(len(FIGURE_LAYERS))])
    chosen = list(layers or (["conv4_1"] if kind == "content" else list(FIGURE_LAYERS)))
    check_layers(chosen)
    if kind == "content" and len(chosen) != 1:
        raise ConfigError("content reconstruction uses one layer; give --layer NAME or --all")
    return [chosen]


@out_of_memory_as_run_error
def reconstruct(
    kind: str,
    image: PathLike,
    output: PathLike | None = None,
    layers: Sequence[str] | None = None,
    config: Config = Config(),
    callbacks: Sequence[Callback] = (),
    all_layers: bool = False,
) -> StylizeResult:
    """Rebuild an image from noise using only its content (one layer) or only its style (a set of layers)."""
    runs = figure_runs(kind, layers, all_layers)
    if output is not None:
        output = check_output_path(output)
        saves_checkpoints = bool(config.checkpoint_every) and not all_layers
        refuse_overwriting_inputs(output, image, also=replaced_beside(output, saves_checkpoints, extras=False))
        if saves_checkpoints:
            check_checkpoint_folder(output)
    source = open_image(image)
    sized = fit_to_size(image, source, config.size, max(min_side(config, run) for run in runs))
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    warn_if_random(config.weights)
    target = prepare(pil_to_tensor(sized), device)
    torch.manual_seed(config.seed)

    run = Run(config.pick(RunSettings), output, callbacks, checkpoints=not all_layers)
    shape = tuple(target.shape[-2:])
    for watcher in run.watchers:
        watcher.on_schedule([(config.steps, shape)] * len(runs))
    total = config.steps * len(runs)

    def work() -> list[torch.Tensor]:
        return [_reconstruct_one(kind, target, layers_, config, device, precision, run, 1 + i * config.steps,
                                 total)
                for i, layers_ in enumerate(runs)]

    results = run.execute(total, work, save_to=output if not all_layers else None)
    results = [r.detach().float().cpu() for r in results]
    run.sizes.append(shape)
    if all_layers:
        from nstcli.image import sheets

        labels = ["input"] + [(layer[0] if kind == "content" else f"{layer[0]}..{layer[-1]}" if len(layer) > 1
                               else layer[0]) for layer in runs]
        sheet = sheets.labelled_sheet([tensor_to_pil(target)] + [tensor_to_pil(r) for r in results], labels)
        image_out = pil_to_tensor(sheet)
        if output is not None:
            atomic_write(output, lambda tmp: sheet.save(tmp, format=output_format(output)))
    else:
        image_out = results[0]
        if output is not None:
            save_image(image_out, output)
    return run.result(image_out, output, total, device, precision=precision)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two images in [0, 1]: how close a reconstruction came."""
    mse = torch.mean((a.float().cpu() - b.float().cpu()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
