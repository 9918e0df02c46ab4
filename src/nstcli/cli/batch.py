"""nst batch: many content images x many styles in one process, resumable and shardable."""

from __future__ import annotations

import json

import click

from nstcli.cli import progress as show
from nstcli.cli.options import (PATH, build_config, check_weights_path, config_options, format_option, output_option,
                               quiet_option)
from nstcli import api
from nstcli.api import FIELDS, ConfigError

# A batch uses each style on its own, so there is nothing to blend.
BATCH_KEYS = tuple(name for name in FIELDS if name != "style_blend")


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


@click.command(epilog=BATCH_EXAMPLES)
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@click.option("-s", "--style", "styles", multiple=True, required=True, type=PATH,
              help="Style image; repeat for several (every input gets every style).")
@output_option("Output folder, created if missing.", dest="outdir")
@click.option("-r", "--recursive", is_flag=True, help="Descend into subfolders (kept under the output folder).")
@format_option("Output format.")
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
    shard = api.parse_shard(shard, allow_all=plan) if shard is not None else None
    # Planning reads folder listings only: a missing input or a clash is reported before torch loads.
    items = api.plan_batch(inputs, styles, outdir, recursive=recursive, fmt=fmt, shard=shard,
                           content_masks=content_masks, style_masks=style_masks)
    if plan:
        listed = api.plan_status(items, shard[1] if shard else None, overwrite=overwrite)
        for planned in listed:
            click.echo(json.dumps(planned.summary()) if as_json else show.plan_line(planned))
        click.echo(show.plan_summary(listed, shard), err=True)
        return
    check_weights_path(config)
    progress = "none" if quiet else progress
    watchers = [] if progress == "none" else [show.DownloadBar()]
    if progress == "steps":
        watchers.append(show.ProgressBar(position=1, leave=False))  # named after each item as it starts
    run = api.batch(items, config, overwrite=overwrite, callbacks=watchers)
    summary = api.ItemSummary(planned=len(run), shard=shard)
    show.run_items("batch", run, summary, "item", bar=progress != "none", as_json=as_json)
