"""Stylise a clip frame by frame without flicker: a thin loop around the same stylise call.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016): the first frame is
stylised as `nst stylize` would (full `steps`, coarse-to-fine); every later frame runs `frame_steps`
steps with one more term, the temporal term, that keeps it close to the previous stylised frame
warped onto it by the content's optical flow wherever the flow is reliable (flow.Motion.mask). It
starts from that warped frame where the flow is reliable and from the frame's own start
(`config.init`, the content by default) elsewhere: what moved into view, or moved further than the
flow could follow, is painted afresh instead of being grown from whatever was there before.
The network and the style targets are built once per clip (stylize.single's caches).

`save_motion` writes, for every frame after the first, what the frame was built from into
OUT_motion/ beside the output: the flow, the mask, the warped previous result and the start image.

Frames stream through: one content frame is decoded at a time, and only the previous content frame
and the previous result are kept, so memory does not grow with the clip's length.

Resumable (resume.py): every finished frame is written at once as a PNG into a work folder beside
the output, with a record of the run's settings. A re-run of the same command continues after the
last finished frame; an interrupted run (Ctrl-C, SIGTERM) keeps every finished frame. The video is encoded once all frames exist, then the
work folder is removed. Each frame's optimisation depends only on its content, the previous
*saved* frame and the settings, so a resumed run produces the same frames as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import torch
from PIL import Image

from nstcli.config.commands import VideoSettings, checked
from nstcli.config.fields import Config
from nstcli.errors import ImageError, Interrupted, NSTWarning, PrecisionWarning, RandomWeightsWarning, WriteError
from nstcli.image.io import pil_to_tensor, save_image
from nstcli.reports import notify
from nstcli.stylize import single
from nstcli.stylize.coarse_to_fine import initial_image
from nstcli.terms.temporal import TemporalTerm, temporal_error
from nstcli.video import resume
from nstcli.video.formats import FOLDER_RATE, frame_name
from nstcli.video.output import motion_folder, work_folder, write_motion
from nstcli.video.plan import VideoPlan, plan_video
from nstcli.video.reader import read_frames
from nstcli.video.reports import FrameReport, VideoCallback, VideoResult
from nstcli.video.writer import write_video

PathLike = str | os.PathLike


def start_image(warped: torch.Tensor, mask: torch.Tensor, own_start: torch.Tensor) -> torch.Tensor:
    """A later frame's starting image: the warped previous result where the flow is reliable, the
    frame's own start (as `nst stylize` would begin it) elsewhere."""
    return warped * mask + own_start * (1 - mask)


def temporal_terms(warped: torch.Tensor, mask: torch.Tensor, temporal_weight: float):
    """The terms a later frame adds to stylize's own, as `single.stylize(extra_terms=...)` takes them:
    the temporal term, which keeps the frame close to the previous result warped onto it where the
    flow is reliable."""

    def terms(shape, device):
        return [TemporalTerm(warped.to(device), mask.to(device), temporal_weight)]

    return terms


def _quantised(image: torch.Tensor) -> torch.Tensor:
    """The result as its PNG will hold it (8 bits per channel): what a resumed run reads back."""
    return image.detach().float().cpu().clamp(0, 1).mul(255).add(0.5).floor().div(255)


def _frame_loss(losses: dict) -> float:
    """The objective without the temporal term: what the frame would score in `nst stylize`."""
    return float(losses.get("loss", 0.0)) - float(losses.get("temporal", 0.0))


class _FrameLoop:
    """The frames of one run in order: each stylised from its content and the previous result, then
    saved, logged and reported at once. Frames finished by an earlier run are read past."""

    def __init__(self, plan: VideoPlan, folder: Path, finished: int, log: dict[int, dict], callbacks,
                 save_motion: bool):
        from nstcli.video.flow import FlowEstimator

        self.plan, self.folder, self.log, self.callbacks = plan, folder, log, callbacks
        self.save_motion = save_motion
        self.finished = finished
        self.index = self.read = 0
        self.precision = None
        self.previous_content = self.previous_result = None
        self.estimator = FlowEstimator()

    def own_start(self, frame: Image.Image) -> torch.Tensor:
        # What nst stylize would start this frame from, at the frame size (a single scale).
        plan, config = self.plan, self.plan.config
        content = pil_to_tensor(frame)
        style_size = round(max(plan.size) * config.style_scale)
        return initial_image(config.init, content,
                             lambda: plan.style.tensors(style_size, plan.need, torch.device("cpu"))[0], config.seed).cpu()

    def stylize_frame(self, index: int, frame: Image.Image):
        """One frame's result, and the (warped previous result, mask) it was held to (None for the first)."""
        plan, callbacks = self.plan, self.callbacks
        with warnings.catch_warnings():
            if index > 0:  # said once, for the first frame, not once per frame
                warnings.simplefilter("ignore", RandomWeightsWarning)
                warnings.simplefilter("ignore", PrecisionWarning)
            if self.previous_result is None:
                result = single.stylize(frame, plan.style, None, plan.first_config, callbacks, save_on_interrupt=False)
                return result, None
            motion = self.estimator.motion(self.previous_content, frame)
            warped = motion.warp(self.previous_result)
            mask = motion.mask_tensor()
            start = start_image(warped, mask, self.own_start(frame))
            if self.save_motion:
                write_motion(motion_folder(plan.output), index, motion, warped, start)
            result = single.stylize(frame, plan.style, None, plan.later_config, callbacks, save_on_interrupt=False,
                                    init=start, extra_terms=temporal_terms(warped, mask, plan.temporal_weight))
        return result, (warped, mask)

    def keep(self, index: int, frame: Image.Image, result, held_to, started: float) -> None:
        """Save the finished frame, log it with its temporal error and report it."""
        self.previous_result = _quantised(result.image)
        error = float(temporal_error(self.previous_result, *held_to)) if held_to is not None else None
        self.precision = result.precision
        save_image(self.previous_result, self.folder / frame_name(index), elsewhere=None)  # kept: another -o starts over
        self.previous_content = frame
        self.finished = index + 1
        row = {"index": index, "seconds": round(time.perf_counter() - started, 4),
               "loss": _frame_loss(result.losses), "temporal_error": error}
        resume.append_log(self.folder, row)
        self.log[index] = row
        report = FrameReport(index=index, total=self.plan.clip.frames, seconds=row["seconds"], loss=row["loss"],
                             temporal_error=error)
        notify(self.callbacks, "on_frame", report)

    def run(self) -> None:
        frames = read_frames(self.plan.clip, self.plan.size)
        try:
            for index, frame in enumerate(frames):
                self.index, self.read = index, index + 1
                if index < self.finished:
                    if index == self.finished - 1:  # the last finished frame: what the next one warps
                        self.previous_result = resume.load_frame(self.folder / frame_name(index))
                    self.previous_content = frame
                    continue
                started = time.perf_counter()
                result, held_to = self.stylize_frame(index, frame)
                self.keep(index, frame, result, held_to, started)
        finally:
            frames.close()


def _library_error(exc: BaseException, loop: _FrameLoop, output: Path, folder: Path, total: int):
    """What a run that stopped tells: where it stopped and what is kept; None for an error that stands as it is."""
    kept = resume.what_is_kept(loop.finished, total, folder)
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        where = f"while encoding {output}" if loop.finished >= total else f"at frame {loop.index + 1} of {total}"
        return Interrupted(f"interrupted {where}; {kept}")
    if isinstance(exc, WriteError):
        return WriteError(f"{exc}; {kept}", exc.path, exc.errno)
    if isinstance(exc, OSError):
        return ImageError(f"cannot write into {folder} ({exc.strerror or exc}); {kept}")
    return None


def stylize_video(
    source: PathLike,
    styles: PathLike | Sequence[PathLike],
    output: PathLike,
    config: Config = Config(),
    settings: VideoSettings = VideoSettings(),
    *,
    callbacks: Sequence[VideoCallback] = (),
    folder_rate: Fraction | float = FOLDER_RATE,
    save_motion: bool = False,
) -> VideoResult:
    """Stylise every frame of `source` (a video file or a folder of frames) into `output`.

    `output` is a video file (container from its extension) or a folder for numbered PNGs.
    `save_motion` also writes each later frame's flow, mask, warped previous result and start image
    into `motion_folder(output)`.
    """
    started = time.perf_counter()
    output = Path(output)
    settings = checked(settings)
    plan = plan_video(Path(source), styles, output, config, settings.frame_steps, settings.temporal_weight,
                      folder_rate)
    clip = plan.clip
    folder = work_folder(output)
    fingerprint = resume.run_fingerprint(plan.source, clip, plan.style, plan.first_config, plan.size,
                                         settings.frame_steps, settings.temporal_weight)
    created = not folder.exists()
    finished = resume.prepare_work(folder, fingerprint, output)
    loop = _FrameLoop(plan, folder, finished, resume.read_log(folder), callbacks, save_motion)
    notify(callbacks, "on_video_start", clip.frames, finished)
    try:
        loop.run()
        if loop.read < clip.frames:
            # The container promised more frames than it decoded (a truncated file): stylise what
            # exists, and say what was lost rather than hand over a shorter video without a word.
            warnings.warn(f"video {plan.source} declares {clip.frames} frames but only {loop.read} could be read "
                          f"(the file is cut short or damaged); the output has {loop.read}", NSTWarning, stacklevel=2)
            clip = dataclasses.replace(clip, frames=loop.read)
        if plan.video is not None:
            notify(callbacks, "on_encode", output)
            # Another -o would be another work folder: its frames would be made again.
            write_video(plan.video, clip, resume.saved_frames(folder, loop.finished), elsewhere=None)
            shutil.rmtree(folder, ignore_errors=True)
    except BaseException as exc:
        if loop.finished == 0:
            # Nothing to continue from: leave no work folder (or record) that a corrected command
            # would have to get past.
            resume.discard_work(folder, created)
        error = _library_error(exc, loop, output, folder, clip.frames)
        if error is None:
            raise
        raise error from None
    finally:
        notify(callbacks, "on_video_end")

    log = loop.log
    errors = [log[i]["temporal_error"] for i in range(1, loop.finished)
              if log.get(i, {}).get("temporal_error") is not None]
    return VideoResult(
        output=output,
        frames=loop.finished,
        seconds=time.perf_counter() - started,
        temporal_error=sum(errors) / len(errors) if errors else None,
        resumed_from=finished,
        frame_log=[log[i] for i in sorted(log)],
        precision=loop.precision,
    )
