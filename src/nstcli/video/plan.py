"""A video run planned before its first frame: the clip opened, the style prepared, the output and
every frame's scales checked, and the configs of the first and the later frames. A run refused
here costs no computing and leaves no work folder behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from nstcli.config.fields import SPECS, Config
from nstcli.errors import ConfigError, ImageError
from nstcli.runtime import resolve_device
from nstcli.stylize.single_plan import plan_scales
from nstcli.stylize.styles import PreparedStyle
from nstcli.video.formats import frame_size
from nstcli.video.output import check_output
from nstcli.video.reader import Clip, open_clip
from nstcli.video.writer import VideoOutput


def _check_frame_size(source: Path, size: tuple[int, int], config: Config, need: int) -> None:
    width, height = size
    if min(width, height) >= need:
        return
    enough = math.ceil(config.size * need / min(width, height))
    largest = SPECS["size"].maximum
    hint = f"use --size {enough} or more" if enough <= largest else "crop the frames to a less elongated shape"
    raise ImageError(f"frames of {source} would be {width}x{height} px at --size {config.size}; the layers used "
                     f"need at least {need} px on the short side: {hint}")


@dataclass(frozen=True)
class VideoPlan:
    """What a run settles before its first frame: the clip, the style, the output and the frame configs."""

    source: Path
    output: Path
    clip: Clip
    style: PreparedStyle
    video: VideoOutput | None  # None: a folder of frames
    size: tuple[int, int]  # (width, height) of every frame
    need: int  # the smallest side the layers allow
    config: Config  # as given
    first_config: Config  # the first frame's: as `nst stylize` would run it, at the frame size
    later_config: Config  # every later frame's: one scale at full size, warm-started
    temporal_weight: float


def plan_video(source: Path, styles, output: Path, config: Config, frame_steps: int, temporal_weight: float,
               folder_rate) -> VideoPlan:
    """Everything checked before any computing: a run refused here costs nothing and leaves no work folder."""
    from nstcli.network.load import layers_needed, min_side
    from nstcli.stylize.sizes import fit_to_size

    if frame_steps < 0:
        raise ConfigError(f"--frame-steps must be 0 or more, got {frame_steps}")
    if not math.isfinite(temporal_weight) or temporal_weight < 0:
        raise ConfigError(f"--temporal-weight must be a finite number >= 0, got {temporal_weight}")
    clip = open_clip(source, folder_rate=folder_rate)
    style = PreparedStyle(styles, config.style_blend)
    video = check_output(source, style.paths, output, clip)
    size = frame_size(clip.size, config.size, even=video is not None and video.encoder != "gif")
    need = min_side(layers_needed(config))
    _check_frame_size(source, size, config, need)
    style_final = max(1, round(max(size) * config.style_scale))
    for path, image in zip(style.paths, style.images()):
        fit_to_size(path, image, style_final, need, scale=config.style_scale)

    # The first frame as `nst stylize` would do it (at the frame size actually used); later frames a
    # single scale at full size, warm-started, with no checkpoints of their own.
    first_config = config.replace(size=max(size), checkpoint_every=0)
    # Later frames run their few steps in full (no plateau stop): a frame that stopped early would keep
    # more of the frame before it than its neighbours do, which shows as flicker.
    later_config = first_config.replace(steps=frame_steps, start_size=None, first_steps=None, stop_tolerance=0.0)
    # Every frame's scales and tiles (and the memory budget) are checked now, as stylize.single_plan would at
    # frames 1 and 2.
    device = resolve_device(config.device)
    plan_scales(first_config, size, style, device)
    if clip.frames > 1:
        plan_scales(later_config, size, style, device, extra_terms=True)
    return VideoPlan(source, output, clip, style, video, size, need, config, first_config, later_config,
                     temporal_weight)

