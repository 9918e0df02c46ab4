"""`nst video --model`: a clip through a trained network, frame by frame, kept stable by the flow.

A feed-forward network maps nearly equal frames to nearly equal pictures, but not equal enough:
small changes of the input (noise, compression, a few pixels of motion) change the brush strokes it
paints, and that shows as flicker. Each frame is therefore blended with the previous result carried
along the content's optical flow (`flow.FlowEstimator`, `flow.reliable`, `flow.warp`, as `nst video`
uses them): out = styled + blend * mask * (warped - styled), where `mask` is 1 where the flow is
reliable. Where the flow is not (occlusions, motion boundaries, the border a pan brings in), the
frame is the network's own. With `blend` = b the temporal error on reliable pixels is (1 - b)^2 of
frame-by-frame application, before the flow's own error (benchmarks/fast/fast_video.py measures it).
The mask is the same as `nst video`'s (flow.Motion.mask): it also drops pixels where the frames do
not match along the flow, so an object moving faster than the flow can follow is the network's own
picture of it rather than a blend with the background it covered in the previous frame.

`save_motion` writes each later frame's flow, mask, warped previous result and the network's own
frame before blending into OUT_motion/ beside the output (video/output.py: write_motion).

Frames stream through: one decoded frame, the previous frame and the previous result in memory. A
video file is written under a temporary name and renamed at the end (video/writer.py), so an interrupted
run leaves nothing half-written; at a few frames per second, a re-run simply starts over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from nstcli.errors import Interrupted
from nstcli.fast.apply import load_model, stylize_image
from nstcli.config.commands import ApplySettings, VideoSettings, checked
from nstcli.config.specs import FAST_PRECISIONS
from nstcli.runtime import resolve_precision
from nstcli.image.io import pil_to_tensor, save_image, tensor_to_pil
from nstcli.reports import notify
from nstcli.terms.temporal import temporal_error
from nstcli.video.formats import FOLDER_RATE, frame_name, frame_size
from nstcli.video.output import check_output, motion_folder, write_motion
from nstcli.video.reader import open_clip, read_frames
from nstcli.video.reports import FrameReport, VideoResult
from nstcli.video.writer import write_video
from nstcli.writes import make_folder

PathLike = str | os.PathLike
DEFAULT_BLEND = VideoSettings.blend


def stylize_video(source: PathLike, model: PathLike, output: PathLike, settings: ApplySettings = ApplySettings(), *,
                  blend: float = DEFAULT_BLEND, callbacks: Sequence = (),
                  folder_rate: float = float(FOLDER_RATE), save_motion: bool = False) -> VideoResult:
    from nstcli.video.flow import FlowEstimator
    from nstcli.runtime import resolve_device

    started = time.perf_counter()
    source, output = Path(source), Path(output)
    blend = checked(VideoSettings(blend=blend)).blend
    settings = checked(settings)
    torch_device = resolve_device(settings.device)
    precision = resolve_precision(settings.precision, torch_device, FAST_PRECISIONS)
    clip = open_clip(source, folder_rate=Fraction(folder_rate).limit_denominator(1001))
    # -o as `nst video` checks it, before the network is loaded; a video file is written under a
    # temporary name, so there is no work folder.
    plan = check_output(source, [Path(model)], output, clip, work=False)
    folder = plan is None
    net, _ = load_model(model, torch_device)
    dims = frame_size(clip.size, settings.size or max(clip.size), even=plan is not None and plan.encoder != "gif")
    estimator = FlowEstimator()  # also at blend 0: the temporal error is measured either way
    errors: list[float] = []
    log: list[dict] = []
    notify(callbacks, "on_video_start", clip.frames, 0)

    def frames():
        previous_content = previous_result = None
        reader = read_frames(clip, dims)
        try:
            for index, frame in enumerate(reader):
                tick = time.perf_counter()
                content = pil_to_tensor(frame)
                styled = stylize_image(net, content, strength=settings.strength,
                                       preserve_color=settings.preserve_color, precision=precision,
                                       device=torch_device)
                error = None
                if previous_result is not None:
                    motion = estimator.motion(previous_content, frame)
                    warped, mask = motion.warp(previous_result), motion.mask_tensor()
                    if save_motion:
                        write_motion(motion_folder(output), index, motion, warped, styled)
                    if blend:
                        styled = styled + blend * mask * (warped - styled)
                    error = float(temporal_error(styled, warped, mask))
                    errors.append(error)
                previous_content, previous_result = frame, styled
                row = {"index": index, "seconds": round(time.perf_counter() - tick, 4), "temporal_error": error}
                log.append(row)
                report = FrameReport(index=index, total=clip.frames, seconds=row["seconds"], loss=0.0,
                                     temporal_error=error)
                notify(callbacks, "on_frame", report)
                yield index, styled
        finally:
            reader.close()

    count = 0
    try:
        if folder:
            make_folder(output, what="output folder")
            for index, image in frames():
                save_image(image, output / frame_name(index))
                count = index + 1
        else:
            def pictures():
                nonlocal count
                for index, image in frames():
                    count = index + 1
                    yield tensor_to_pil(image)

            write_video(plan, clip, pictures())
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted at frame {count + 1} of {clip.frames}; nothing was written to {output}; "
                          "run the same command again") from None
    finally:
        notify(callbacks, "on_video_end")
    return VideoResult(output=output, frames=count, seconds=time.perf_counter() - started,
                       temporal_error=sum(errors) / len(errors) if errors else None, resumed_from=0, frame_log=log)
