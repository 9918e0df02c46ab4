"""The `nst` command: a thin skin over nstcli.api. Only this module prints or chooses exit codes.

Exit codes: 0 success; 1 a run failed (bad image, weights, runtime); 2 usage or config error;
130 interrupted (Ctrl-C or SIGTERM). torch is imported only inside commands, so `nst --help` is fast.
"""

from __future__ import annotations

import json
import signal
import sys
import warnings

import click

from nstcli import __version__
from nstcli.config import FIELDS, load_config
from nstcli.errors import NSTError

EXIT_INTERRUPTED = 130


class NSTGroup(click.Group):
    """Turns library errors into one `Error:` line and the documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
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
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise click.ClickException(
                f"unexpected {exc.__class__.__name__}: {text[:300]} (run 'nst --debug ...' for the "
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
    warnings.simplefilter("always", UserWarning)  # one line per run, even when runs share a process
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        except ValueError:  # not the main thread (e.g. inside a test runner thread)
            pass


def config_options(function):
    """Add one option per config key (`--steps` <-> `steps:`), all defaulting to "not given"."""
    for name in reversed(list(FIELDS)):
        meta = FIELDS[name].metadata
        flag = "--" + name.replace("_", "-")
        if meta["kind"] == "bool":
            option = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=meta["help"])
        elif meta["kind"] == "choice":
            option = click.option(flag, name, default=None, metavar="|".join(meta["choices"]),
                                  help=meta["help"])
        else:
            metavar = {"int": "N", "float": "X", "float?": "X", "layers": "LAYERS",
                       "floats?": "X,Y,...", "str": "TEXT"}[meta["kind"]]
            if name == "weights":
                metavar = "imagenet|random|PATH"
            option = click.option(flag, name, default=None, metavar=metavar, help=meta["help"])
        function = option(function)
    function = click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                            help="YAML file of config keys (see configs/); flags override it.")(function)
    return function


def build_config(config_file, values: dict):
    given = {key: value for key, value in values.items() if key in FIELDS and value is not None}
    return load_config(config_file, given)


def _emit(result_summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result_summary))
    elif result_summary.get("output"):
        click.echo(result_summary["output"])


def _check_output_extension(output: str) -> None:
    from nstcli.errors import ImageError
    from nstcli.images import output_format

    try:
        output_format(output)
    except ImageError as exc:
        # A usage error: caught before any image is read or network loaded.
        error = click.ClickException(str(exc))
        error.exit_code = 2
        raise error from None


STYLIZE_EXAMPLES = """
\b
Examples:
  nst stylize photo.jpg starry.jpg -o out.png
  nst stylize photo.jpg starry.jpg -o out.jpg --size 512 --steps 500
  nst stylize photo.jpg a.jpg b.jpg -o out.png --style-blend 0.7,0.3
  nst stylize photo.jpg starry.jpg -o out.png --config configs/seed.yaml --json
  nst stylize examples/content.jpg examples/style.jpg -o out.png --weights random --steps 200 --size 128
"""


@nst.command(epilog=STYLIZE_EXAMPLES)
@click.argument("content", type=click.Path(dir_okay=True))
@click.argument("styles", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="Output image (.png .jpg .jpeg .webp .tif).")
@click.option("--style-blend", default=None, metavar="W1,W2,...",
              help="Weights of several style images, e.g. 0.7,0.3 (default equal).")
@click.option("--no-clobber", is_flag=True, help="Refuse to replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the result on stdout.")
@config_options
def stylize(content, styles, output, style_blend, no_clobber, as_json, config_file, **values):
    """Repaint CONTENT in the style of STYLE (one or more images) and write it to -o OUT.

    Progress goes to stderr; stdout gets only the written path (or JSON with --json).
    A checkpoint image is saved every --checkpoint-every steps into OUT_checkpoints/.
    """
    config = build_config(config_file, values)
    _check_output_extension(output)
    blend = None
    if style_blend is not None:
        from nstcli.config import coerce

        blend = coerce("style_layer_weights", style_blend) if style_blend.strip() else None
        if blend is not None and len(blend) != len(styles):
            raise click.UsageError(f"--style-blend has {len(blend)} weights for {len(styles)} style images")
    from nstcli import api
    from nstcli.callbacks import ProgressBar

    callbacks = [] if config.quiet else [ProgressBar()]
    result = api.stylize(content, styles, output, config=config, callbacks=callbacks,
                         style_blend=blend, no_clobber=no_clobber)
    _emit(result.summary(), as_json)


@nst.group()
def weights():
    """Manage VGG19 weights: download, import for offline use, show the cache."""


@weights.command("fetch")
def weights_fetch():
    """Download torchvision's ImageNet VGG19 once, verify its hash and cache its features."""
    from nstcli import weights as w

    target = w.cached_path()
    if target.exists():
        w.read_file(target)  # verify it still loads
    else:
        w.download_imagenet()
    click.echo(str(target))


@weights.command("import")
@click.argument("file", type=click.Path(dir_okay=True))
def weights_import(file):
    """Verify FILE (a VGG19 state dict, .pth/.pt/.safetensors) and install it as the imagenet weights.

    For machines without internet: download the weights elsewhere (see README), copy the file over,
    and import it.
    """
    from nstcli import weights as w

    click.echo(str(w.import_file(file)))


@weights.command("path")
def weights_path():
    """Print where the weights cache file is (set NSTCLI_CACHE to move it)."""
    from nstcli.weights import cached_path

    click.echo(str(cached_path()))


def main() -> None:
    from nstcli.runtime import prefer_sleeping_openmp_threads

    prefer_sleeping_openmp_threads()  # must precede the first `import torch`, which commands do lazily
    nst(prog_name="nst")


if __name__ == "__main__":
    main()
