"""Where a video run writes: -o checked before any work (a file, a folder of frames, never an input), the
work folder that keeps finished frames, and the pictures of each frame's motion (`save_motion`). Shared
by the optimisation loop and the fast network's loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nstcli.errors import ConfigError
from nstcli.image.io import refuse_overwriting_inputs, save_image
from nstcli.writes import make_folder
from nstcli.outputs import prepare_folder
from nstcli.video.formats import frame_name, is_folder_output
from nstcli.video.reader import Clip
from nstcli.video.writer import plan_video_output

PathLike = str | os.PathLike


def work_folder(output: PathLike) -> Path:
    """Where finished frames are kept: OUT_frames/ beside OUT.mp4; a folder output is its own."""
    output = Path(output)
    if is_folder_output(output):
        return output
    return output.with_name(f"{output.stem}_frames")


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(source: Path, inputs: Sequence[Path], output: Path, clip: Clip, work: bool = True):
    """-o checked before anything is computed (usage errors exit 2, a folder that cannot be made exit 1),
    creating nothing; returns the video plan, or None for a folder of frames. `inputs` besides the
    clip (style images, a model) must not be overwritten; `work`: the run keeps a work folder."""
    refuse_overwriting_inputs(output, [source, *inputs])
    folder = work_folder(output)
    if work and any(_same_path(folder, path) for path in (source, *inputs)):
        raise ConfigError(f"the work folder {folder} of output {output} is an input; choose another -o")
    if is_folder_output(output):
        if output.exists() and not output.is_dir():
            raise ConfigError(f"output {output} is a file, not a folder; give a folder name for PNG "
                              "frames or a video file name such as out.mp4")
        prepare_folder(output, create=False)
        return None
    if output.is_dir():
        raise ConfigError(f"output {output} is a folder; give a video file name such as {output / 'out.mp4'}, "
                          f"or {output}/ for PNG frames")
    plan = plan_video_output(output, clip)
    prepare_folder(output.parent if str(output.parent) else Path("."), create=False)
    if work:
        prepare_folder(folder, "work folder", create=False)
    return plan


def motion_folder(output: PathLike) -> Path:
    """Where `save_motion` writes: OUT_motion/ beside OUT.mp4 or beside the folder OUT/."""
    output = Path(output)
    return output.with_name(f"{output.stem if not is_folder_output(output) else output.name}_motion")


def write_motion(folder: Path, index: int, motion, warped: torch.Tensor, start: torch.Tensor) -> None:
    """The pictures of how frame `index` was started: flow, mask, warped previous result, start.

    The mask is white where the flow is reliable, grey where it passed the forward-backward test
    but the frames do not match along it (flow.mismatched), black where it failed that test.
    """
    from nstcli.video.flow import flow_picture

    make_folder(folder, what="motion folder")  # pictures never read back: made again if removed
    number = frame_name(index).removeprefix("frame_")
    consistent = motion.consistent if motion.consistent is not None else motion.mask
    mask = np.where(motion.mask, 1.0, np.where(consistent, 0.5, 0.0)).astype(np.float32)
    pictures = {
        "flow": torch.from_numpy(flow_picture(motion.backward)).permute(2, 0, 1)[None].float() / 255,
        "mask": torch.from_numpy(mask)[None, None].expand(1, 3, -1, -1),
        "warped": warped,
        "start": start,
    }
    for name, picture in pictures.items():
        save_image(picture, folder / f"{name}_{number}")
