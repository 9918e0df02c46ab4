"""nst reconstruct content|style: the paper's reconstruction figures, one command body for both."""

from __future__ import annotations

import click

from nstcli.cli.options import (PATH, build_config, check_before_computing, config_options, emit, output_option,
                               quiet_option)
from nstcli import api
from nstcli.api import ConfigError

# What `nst reconstruct` reads from the config: it starts from noise at one size, with the layers
# and losses of the figure, so initialisation, loss weights, layers, scales, averaging and colours
# do not apply.
RECONSTRUCT_KEYS = ("size", "steps", "optimizer", "adam_betas", "lr", "seed", "device", "precision",
                    "weights", "pooling", "padding", "checkpoint_every")


RECONSTRUCT_EXAMPLES = """
\b
Examples:
  nst reconstruct content photo.jpg -o conv4_1.png --layer conv4_1
  nst reconstruct content photo.jpg -o content_sheet.png --all
  nst reconstruct style starry.jpg -o style.png --layers conv1_1,conv2_1,conv3_1
  nst reconstruct style starry.jpg -o style_sheet.png --all --steps 500
"""


@click.group()
def reconstruct():
    """The paper's reconstruction figures: what a layer keeps of an image's content or style."""


def _reconstruct(kind, image, output, layers, all_layers, as_json, quiet, config_file, values):
    flag = "--layer" if kind == "content" else "--layers"
    if layers is not None and all_layers:
        raise ConfigError(f"{flag} and --all contradict each other: --all runs the whole figure "
                          f"({'every layer' if kind == 'content' else 'every growing set of layers'}); "
                          "give one of them")
    if all_layers and values.get("checkpoint_every") is not None:
        raise ConfigError("--checkpoint-every does not apply with --all: the sheet is made of several runs, "
                          "none of which is checkpointed; drop one of them")
    layer_list = None
    if layers is not None:
        layer_list = list(api.check_layers([name.strip() for name in layers.split(",") if name.strip()], flag))
        if kind == "content" and len(layer_list) != 1:
            raise ConfigError("--layer takes one layer: content reconstruction matches a single layer's "
                              "feature maps (or give --all)")
    config = build_config(config_file, values)
    check_before_computing(output, [image], config)
    from nstcli.cli.progress import DownloadBar, ProgressBar

    callbacks = [] if quiet else [ProgressBar(f"reconstruct {kind}"), DownloadBar()]
    result = api.reconstruct(kind, image, output, layer_list, config=config, callbacks=callbacks,
                             all_layers=all_layers)
    emit(result.summary(), as_json)


def _command(kind: str, flag: str, metavar: str, layers_help: str, all_help: str, summary: str) -> click.Command:
    """`nst reconstruct KIND`: the same body and options for both kinds; only the layer option differs."""

    def run(image, output, layers, all_layers, as_json, quiet, config_file, **values):
        _reconstruct(kind, image, output, layers, all_layers, as_json, quiet, config_file, values)

    run.__doc__ = summary
    decorators = [
        reconstruct.command(kind, epilog=RECONSTRUCT_EXAMPLES),
        click.argument("image", type=PATH),
        output_option(),
        click.option(flag, "layers", default=None, metavar=metavar, help=layers_help),
        click.option("--all", "all_layers", is_flag=True, help=all_help),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout."),
        quiet_option,
        config_options(RECONSTRUCT_KEYS),
    ]
    for decorate in reversed(decorators):
        run = decorate(run)
    return run


reconstruct_content = _command(
    "content", "--layer", "LAYER", "The one layer whose feature maps are matched (default conv4_1).",
    "Every layer conv1_1 ... conv5_1 on one labelled sheet, input first.",
    "Start from noise and optimise only the content loss of IMAGE at one layer.")
reconstruct_style = _command(
    "style", "--layers", "LAYERS",
    "Layers whose Gram matrices are matched, comma-separated (default conv1_1,...,conv5_1).",
    "Growing subsets conv1_1 -> conv1_1..conv5_1 on one labelled sheet, input first.",
    "Start from noise and optimise only the style loss of IMAGE over a set of layers.")
