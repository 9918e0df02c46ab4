"""The `nst` group: every command registered on it, errors turned into one line and an exit code.

The commands live one group a module beside this one (stylize, reconstruct, batch, video, fast,
weights, ui); only the cli package prints or chooses exit codes, and it is a thin skin over
nstcli.api, its only door into the library.

Exit codes: 0 success; 1 a run failed (bad image, weights, runtime); 2 usage or config error;
130 interrupted (Ctrl-C or SIGTERM). Every error is one `Error:` line, click's usage errors included.
torch is imported only once a command has checked its options and paths, so `nst --help` and a
mistyped path answer at once.
"""

from __future__ import annotations

import re
import signal
import warnings

import click

from nstcli import __version__
from nstcli.cli import batch, fast, reconstruct, stylize, ui, video, weights
from nstcli.cli.help_labels import plain_labels
from nstcli.api import FIELDS, NSTError, NSTWarning, first_line, prefer_sleeping_openmp_threads

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


for command in (stylize.stylize, reconstruct.reconstruct, batch.batch, video.video_command, fast.train_command,
                fast.apply_command, fast.export_command, fast.styles_command, weights.weights, ui.ui):
    nst.add_command(command)
plain_labels(nst)  # N, X and a|b|c for every option, as the config keys' own placeholders read


def main() -> None:
    prefer_sleeping_openmp_threads()  # must precede the first `import torch`, which commands do lazily
    nst(prog_name="nst")


if __name__ == "__main__":
    main()
