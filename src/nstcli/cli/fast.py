"""nst train, nst apply, nst export: fast style networks (nstcli.fast)."""

from __future__ import annotations

import json

import click

from nstcli import api
from nstcli.cli.options import (PATH, build_config, check_weights_path, config_options, emit, format_option,
                               output_option, quiet_option, setting_options)

# The config keys that shape training's perceptual loss, as stylize uses them. steps, lr and
# checkpoint_every mean something else here (network updates, Adam on weights) and are train's own.
TRAIN_KEYS = ("content_weight", "style_weight", "tv_weight", "tv_stencil", "loss_normalization", "style_loss",
              "content_layers", "style_layers", "style_layer_weights", "weights", "input_convention", "pooling",
              "padding", "seed", "device")

MODEL_SUFFIX = ".safetensors"

TRAIN_EXAMPLES = """
\b
Examples:
  nst train starry.jpg --data photos/ -o starry.safetensors
  nst train starry.jpg --data photos/ -o starry.safetensors --steps 4000 --batch-size 4 --crop-size 256
  nst train starry.jpg --data photos/ -o starry_slim.safetensors --width 16 --style-weight 20
  nst train starry.jpg --data photos/ -o starry.safetensors     (again, after Ctrl-C: continues)
"""


@click.command("train", epilog=TRAIN_EXAMPLES)
@click.argument("style", type=PATH)
@click.option("--data", required=True, type=PATH, metavar="DIR",
              help="Folder of photos to train on (searched recursively; PNG, JPEG, WebP, TIFF, BMP, GIF).")
@output_option("Model file to write (.safetensors).")
@setting_options(api.TrainSettings)
@click.option("--preview", type=PATH, default=None, help="Photo the previews show (default: the first training photo).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout.")
@quiet_option
@config_options(TRAIN_KEYS, shown=api.TRAIN_CONFIG_DEFAULTS)
def train_command(style, data, output, preview, as_json, quiet, config_file, **values):
    """Train a fast style network for STYLE on the photos in --data; write it to -o MODEL.

    The loss is stylize's (same content/style layers and weights, style loss, TV, VGG19 weights),
    except that --style-weight defaults to 10 here (a network does not start from the photo).
    Stopped by Ctrl-C or SIGTERM it saves a checkpoint (exit 130); the same command continues it.
    """
    api.check_name(output, (MODEL_SUFFIX,), "model" + MODEL_SUFFIX)  # the rest of -o is checked by train()
    settings = api.TrainSettings(**{name: values.pop(name) for name in api.setting_specs(api.TrainSettings)})
    config = build_config(config_file, values, defaults=api.TRAIN_CONFIG_DEFAULTS)
    api.check_input_file(style)
    if preview is not None:
        api.check_input_file(preview)
    check_weights_path(config)
    from nstcli.cli.progress import DownloadBar, ProgressBar

    callbacks = [] if quiet else [ProgressBar("train"), DownloadBar()]
    result = api.train(style, data, output, config=config, settings=settings, callbacks=callbacks, preview=preview)
    emit(result.summary(), as_json)


APPLY_EXAMPLES = """
\b
Examples:
  nst apply starry photo.jpg -o photo_starry.jpg                  (a built-in style)
  nst apply starry.safetensors photo.jpg -o photo_starry.jpg
  nst apply starry.safetensors photos/ -o results/ --size 1024
  nst apply starry.safetensors photo.jpg -o soft.png --strength 0.6 --preserve-color
  nst apply starry.safetensors photos/ -o results/ --shard 2/4 --json
"""


@click.command("apply", epilog=APPLY_EXAMPLES)
@click.argument("model", type=PATH)
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@output_option("Output image for one input file; otherwise an output folder (subfolders kept).")
@setting_options(api.ApplySettings)
@format_option("Output format when -o is a folder.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that exist (default: skip them, so a re-run resumes).")
@click.option("--shard", default=None, metavar="K/N|auto|auto/N", help="Run only the K-th of N disjoint parts "
              "(as nst batch; auto reads a SLURM array or Kubernetes index).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per image on stdout.")
@quiet_option
def apply_command(model, inputs, output, fmt, overwrite, shard, as_json, quiet, **values):
    """Stylise INPUTS (image files and folders) with a trained MODEL in one pass each.

    MODEL is a .safetensors file from nst train or a built-in style's name (nst styles lists them).

    One input file and -o NAME.png writes that file; otherwise -o is a folder getting
    OUT/<name>.<format> per image. Outputs that exist are skipped, so the same command resumes.
    """
    api.read_model_header(model)  # a wrong file is one line before any photo is looked at
    shard_spec = api.parse_shard(shard) if shard is not None else None
    items = api.plan_apply(inputs, output, fmt=fmt, shard=shard_spec, model=model)
    api.check_apply_outputs(items, overwrite)
    from nstcli.cli import progress as show

    summary = api.ItemSummary(planned=len(items), shard=shard_spec)
    results = api.apply(model, items, api.ApplySettings(**values), overwrite=overwrite)
    # One image is one result: no bar, and no counts unless it failed.
    show.run_items("apply", results, summary, "image", bar=not quiet and len(items) > 1, as_json=as_json,
                   counts=len(items) > 1)


@click.command("export")
@click.argument("model", type=PATH)
@output_option("ONNX file to write (.onnx).")
def export_command(model, output):
    """Write a trained MODEL (a file, or a built-in style's name) as ONNX (input and output: float32
    1x3xHxW RGB in [0, 1], any H and W).

    Needs: pip install 'nstcli[export]'.
    """
    click.echo(str(api.export(model, output)))


@click.command("styles")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per style on stdout.")
def styles_command(as_json):
    """List the built-in styles: names that nst apply, nst video --model, nst export and the page take
    wherever a model file is asked for (nst apply starry photo.jpg -o out.png)."""
    for style in api.builtin_styles():
        info, _ = api.read_model_header(style.path)  # the same checks as any model file
        row = {"name": style.name, "painting": style.painting, "artist": style.artist, "year": style.year,
               "width": info.architecture.width, "steps": info.training.get("steps"),
               "bytes": style.path.stat().st_size, "path": str(style.path)}
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(f"{style.name:<10} {style.describe()}, width {row['width']}, "
                       f"{row['steps']} training steps, {row['bytes'] / 1e6:.1f} MB")
