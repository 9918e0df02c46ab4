"""The paper's reconstruction figures (Gatys et al. 2016, Fig. 1): what a layer keeps of an image.

Start from white noise and optimise only a content term at one layer, or only a style term over a
set of layers: what comes back is all those layers constrain. `all_layers` runs the whole figure
(every layer, or every growing subset) and writes one labelled sheet, input first.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from nstcli.config.fields import Config
from nstcli.config.layers import LAYER_INDEX, check_layers
from nstcli.errors import ConfigError
from nstcli.image.io import check_output_path, open_image, output_format, pil_to_tensor, prepare
from nstcli.image.io import refuse_overwriting_inputs, save_image, tensor_to_pil
from nstcli.writes import write_file
from nstcli.network.load import NetworkSettings, load_network, min_side
from nstcli.network.sources import warn_if_random
from nstcli.optim.callbacks import check_checkpoint_folder, replaced_beside
from nstcli.optim.engine import optimize
from nstcli.optim.run import Run, RunSettings, StylizeResult, out_of_memory_as_run_error
from nstcli.reports import Callback
from nstcli.runtime import resolve_device, resolve_precision
from nstcli.stylize.single_plan import network_settings
from nstcli.stylize.sizes import fit_to_size
from nstcli.terms.builder import reconstruction_term
from nstcli.terms.settings import LossSettings

PathLike = str | os.PathLike
# Content reconstructed from each block's first convolution, style from growing sets of them.
FIGURE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


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


@dataclass(frozen=True)
class ReconstructPlan:
    """A reconstruction figure, decided: what `run_reconstruct` needs besides its watchers."""

    kind: str  # "content" or "style"
    runs: list[list[str]]  # the layer set of every reconstruction, in the sheet's order
    output: Path | None
    all_layers: bool  # one labelled sheet of every run, input first
    image: Image.Image  # the input at its size
    device: torch.device
    precision: str
    network: NetworkSettings  # its layers are each run's own
    loss: LossSettings  # the normalisation the terms follow
    run: RunSettings
    steps: int  # per reconstruction
    size: int  # --size, for the out-of-memory message


def plan_reconstruct(kind: str, image: PathLike, output: PathLike | None = None, layers: Sequence[str] | None = None,
                     config: Config = Config(), all_layers: bool = False) -> ReconstructPlan:
    """Every input read and checked, the output path checked, before the network is loaded."""
    runs = figure_runs(kind, layers, all_layers)
    if output is not None:
        output = check_output_path(output)
        saves_checkpoints = bool(config.checkpoint_every) and not all_layers
        refuse_overwriting_inputs(output, image, also=replaced_beside(output, saves_checkpoints, extras=False))
        if saves_checkpoints:
            check_checkpoint_folder(output)
    source = open_image(image)
    sized = fit_to_size(image, source, config.size, max(min_side(run) for run in runs))
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    return ReconstructPlan(kind, runs, output, all_layers, sized, device, precision, network_settings(config),
                           config.pick(LossSettings), config.pick(RunSettings), config.steps, config.size)


def reconstruct(kind: str, image: PathLike, output: PathLike | None = None, layers: Sequence[str] | None = None,
                config: Config = Config(), callbacks: Sequence[Callback] = (),
                all_layers: bool = False) -> StylizeResult:
    """Rebuild an image from noise using only its content (one layer) or only its style (a set of layers)."""
    return run_reconstruct(plan_reconstruct(kind, image, output, layers, config, all_layers), callbacks)


def _reconstruct_one(plan: ReconstructPlan, image: torch.Tensor, layers: Sequence[str], run: Run, first_step: int,
                     total: int) -> torch.Tensor:
    settings = dataclasses.replace(plan.network, layers=tuple(sorted(layers, key=LAYER_INDEX.__getitem__)))
    network = load_network(settings, plan.device, plan.precision, run.watchers)
    term = reconstruction_term(plan.kind, plan.loss, network, image, layers)
    # White noise start, as in the paper's figure: what the layers constrain is all that comes back.
    generator = torch.Generator().manual_seed(plan.run.seed)
    init = torch.rand(image.shape, generator=generator).to(plan.device)
    return optimize(network, init, [term], plan.run.optimizer_settings, steps=plan.steps, callbacks=run.watchers,
                    first_step=first_step, total_steps=total).image


def run_reconstruct(plan: ReconstructPlan, callbacks: Sequence[Callback] = ()) -> StylizeResult:
    """Run a planned figure: each reconstruction from noise, then the image (or the sheet) saved."""
    with out_of_memory_as_run_error(plan.size):
        warn_if_random(plan.network.weights)
        target = prepare(pil_to_tensor(plan.image), plan.device)
        torch.manual_seed(plan.run.seed)
        run = Run(plan.run, plan.output, callbacks, checkpoints=not plan.all_layers)
        shape = tuple(target.shape[-2:])
        for watcher in run.watchers:
            watcher.on_schedule([(plan.steps, shape)] * len(plan.runs))
        total = plan.steps * len(plan.runs)

        def work() -> list[torch.Tensor]:
            return [_reconstruct_one(plan, target, layers, run, 1 + i * plan.steps, total)
                    for i, layers in enumerate(plan.runs)]

        results = run.execute(total, work, save_to=plan.output if not plan.all_layers else None)
        results = [r.detach().float().cpu() for r in results]
        run.sizes.append(shape)
        output = plan.output
        if plan.all_layers:
            from nstcli.image import sheets

            labels = ["input"] + [(layer[0] if plan.kind == "content" else f"{layer[0]}..{layer[-1]}"
                                   if len(layer) > 1 else layer[0]) for layer in plan.runs]
            sheet = sheets.labelled_sheet([tensor_to_pil(target)] + [tensor_to_pil(r) for r in results], labels)
            image_out = pil_to_tensor(sheet)
            if output is not None:
                write_file(output, lambda handle: sheet.save(handle, format=output_format(output)))
        else:
            image_out = results[0]
            if output is not None:
                save_image(image_out, output)
        return run.result(image_out, output, total, plan.device, precision=plan.precision)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two images in [0, 1]: how close a reconstruction came."""
    mse = torch.mean((a.float().cpu() - b.float().cpu()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
