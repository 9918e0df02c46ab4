"""nst video: a clip stylised frame by frame without flicker, by optimisation or with a trained network."""

from __future__ import annotations

import click

from nstcli.cli.options import (PATH, build_config, check_weights_path, config_options, emit, output_option,
                               quiet_option, setting_options)
from nstcli import api
from nstcli.api import FIELDS, ConfigError, flag_name

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
        try:
            return api.frame_rate(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{str(value)!r} is not a frame rate; give frames per second from {float(api.MIN_RATE):g} "
                      f"to {api.MAX_RATE}, e.g. 25 or 29.97", param, ctx)


# Checkpoints, contact sheets and loss curves belong to one image's run, not to a clip's frames.
VIDEO_KEYS = tuple(name for name in FIELDS if name not in ("checkpoint_every", "contact_sheet", "loss_curve"))


@click.command("video", epilog=VIDEO_EXAMPLES)
@click.argument("source", type=PATH)
@click.argument("styles", nargs=-1, required=False, type=PATH)
@output_option("Output video (.mp4 .m4v .mov .mkv .webm .avi .gif), or a folder for numbered PNG frames (a "
               "name ending in / or without an extension).")
@click.option("--model", type=PATH, default=None,
              help="A network from nst train, or a built-in style's name (nst styles), instead of STYLE: one "
                   "pass per frame, blended along the optical flow for stability (--size defaults to the clip's "
                   "own).")
@setting_options(api.VideoSettings, unset=("blend",))
@click.option("--fps", type=FrameRate(), default="25", show_default=True, metavar="X",
              help="Frame rate of the output video when the input is a folder of images (29.97 is NTSC's "
                   "30000/1001).")
@click.option("--save-motion", is_flag=True,
              help="Also write, for every frame after the first, the optical flow, the mask of pixels it "
                   "carries reliably, the previous result warped onto the frame and the frame's start image "
                   "into OUT_motion/ beside the output, to see where motion is lost.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (output, frames, seconds, temporal error) on stdout.")
@quiet_option
@config_options(VIDEO_KEYS)
def video_command(source, styles, output, model, blend, frame_steps, temporal_weight, fps, save_motion, as_json,
                  quiet, config_file, **values):
    """Stylise every frame of SOURCE (a video or a folder of images) in the style of STYLE, without flicker.

    Each frame after the first starts from the previous stylised frame warped by the optical flow
    where the flow is reliable (from the frame itself elsewhere) and is kept close to it there
    (Ruder et al. 2016). Finished frames are kept
    in OUT_frames/ beside the output (for a folder output, in the folder), so after Ctrl-C the same
    command continues where it stopped. Needs: pip install 'nstcli[video]'.
    """
    if model is not None:
        _video_with_model(source, styles, output, model, blend, fps, save_motion, as_json, quiet, config_file, values)
        return
    if not styles:
        raise ConfigError("give a STYLE image (or --model MODEL from nst train)")
    if blend is not None:
        raise ConfigError("--blend goes with --model; without it frames are optimised with --temporal-weight")
    config = build_config(config_file, values)
    # The source is a file or a folder of frames: video.reader checks it; the rest as for stylize.
    api.refuse_overwriting_inputs(output, [source, *styles])
    for path in styles:
        api.check_input_file(path)
    check_weights_path(config)
    from nstcli.cli.progress import DownloadBar, FrameProgressBar

    callbacks = [] if quiet else [FrameProgressBar(), DownloadBar()]
    settings = api.VideoSettings(frame_steps=frame_steps, temporal_weight=temporal_weight)
    result = api.video(source, styles, output, config, settings,
                           callbacks=callbacks, folder_rate=fps, save_motion=save_motion)
    emit(result.summary(), as_json)


# What a trained network's video run reads from the config; everything else is fixed at training.
VIDEO_MODEL_KEYS = ("size", "device", "preserve_color")


def _video_with_model(source, styles, output, model, blend, fps, save_motion, as_json, quiet, config_file, values):
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
    if config.preserve_color == "oklab":
        # The fast path recolours by luminance only; silently dropping oklab would give the style's colours.
        raise ConfigError("--preserve-color oklab is not offered with --model; use luminance")
    api.read_model_header(model)
    from nstcli.cli.progress import FrameProgressBar

    callbacks = [] if quiet else [FrameProgressBar()]
    settings = api.ApplySettings(size=config.size if values.get("size") is not None else None,
                                 preserve_color=config.preserve_color == "luminance", device=config.device)
    result = api.video_with_model(source, model, output, settings,
                                  blend=api.VideoSettings.blend if blend is None else blend, callbacks=callbacks,
                                  folder_rate=fps, save_motion=save_motion)
    emit(result.summary(), as_json)
