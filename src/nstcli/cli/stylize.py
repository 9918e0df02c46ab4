"""nst stylize: one content image in the style of one or more style images."""

from __future__ import annotations

import click

from nstcli.cli.options import (PATH, build_config, check_before_computing, config_options, emit, output_option,
                               quiet_option)

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
    from nstcli import api

    return api.SpatialControl(style_masks, regions=style_regions, region_colors=region_colors,
                          source_masks=source_masks, content_mask=content_mask)


@click.command(epilog=STYLIZE_EXAMPLES)
@click.argument("content", type=PATH)
@click.argument("styles", nargs=-1, required=True, type=PATH)
@output_option()
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
    check_before_computing(output, [content, *styles], config)
    masks = spatial_control(style_masks, style_regions, region_colors, source_masks, content_mask)
    if masks is not None:
        masks.check_usage(styles, output, style_blend=config.style_blend)
    from nstcli import api
    from nstcli.cli.progress import DownloadBar, ProgressBar

    callbacks = [] if quiet else [ProgressBar(), DownloadBar()]
    result = api.stylize(content, styles, output, config=config, callbacks=callbacks, no_clobber=no_clobber,
                         masks=masks)
    emit(result.summary(), as_json)
