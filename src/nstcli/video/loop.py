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

Resumable: every finished frame is written at once as a PNG into a work folder beside the output
(OUT_frames/ for OUT.mp4; for a folder output, the folder itself), with a record of the run's
settings. A re-run of the same command continues after the last finished frame; an interrupted run
(Ctrl-C, SIGTERM) keeps every finished frame. The video is encoded once all frames exist, then the
work folder is removed. Each frame's optimisation depends only on its content, the previous
*saved* frame and the settings, so a resumed run produces the same frames as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import torch
from PIL import Image

from nstcli import paths
from nstcli.video import io as video_io
from nstcli.config.fields import SPECS, VIDEO_FRAME_STEPS, VIDEO_TEMPORAL_WEIGHT, Config, as_dict
from nstcli.errors import (ConfigError, ImageError, Interrupted, NSTWarning, PrecisionWarning,
                           RandomWeightsWarning)
from nstcli.image.io import atomic_write, pil_to_tensor, save_image
from nstcli.runtime import resolve_device
from nstcli.stylize import single
from nstcli.stylize.coarse_to_fine import initial_image
from nstcli.stylize.styles import PreparedStyle
from nstcli.video.output import check_output, motion_folder, work_folder, write_motion
from nstcli.video.reports import FrameReport, VideoCallback, VideoResult
from nstcli.terms.temporal import TemporalTerm, temporal_error

PathLike = str | os.PathLike

# Keys that do not change a frame's pixels (beyond rounding): a resumed run may differ in them. The
# precision is the machine's, like the device: a clip resumed on another machine keeps its frames.
_RUN_ONLY_KEYS = {"checkpoint_every", "contact_sheet", "loss_curve", "device", "precision"}
MANIFEST = ".nst-video.json"
FRAME_LOG = ".nst-frames.jsonl"


def start_image(warped: torch.Tensor, mask: torch.Tensor, own_start: torch.Tensor) -> torch.Tensor:
    """A later frame's starting image: the warped previous result where the flow is reliable, the
    frame's own start (as `nst stylize` would begin it) elsewhere."""
    return warped * mask + own_start * (1 - mask)


def _check_frame_size(source: Path, size: tuple[int, int], config: Config, need: int) -> None:
    width, height = size
    if min(width, height) >= need:
        return
    enough = math.ceil(config.size * need / min(width, height))
    largest = SPECS["size"].maximum
    hint = f"use --size {enough} or more" if enough <= largest else "crop the frames to a less elongated shape"
    raise ImageError(f"frames of {source} would be {width}x{height} px at --size {config.size}; the layers used "
                     f"need at least {need} px on the short side: {hint}")


def _digest(paths: Sequence[Path]) -> str:
    """SHA-256 of the files' bytes, in order (a folder clip: its frame files, names included)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise ImageError(f"{path} cannot be read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def _fingerprint(source: Path, clip: video_io.Clip, styles: PreparedStyle, config: Config, size,
                 frame_steps: int, temporal_weight: float) -> dict:
    """Everything a frame's pixels depend on, to recognise the run a work folder belongs to.

    Inputs are identified by their bytes, not their names: a clip replaced by another under the same
    name (or a style image repainted) is another run, and its frames must not be mixed with these.
    """
    settings = {key: value for key, value in as_dict(config).items() if key not in _RUN_ONLY_KEYS}
    clip_files = video_io.frame_files(source) if clip.folder else [source]
    return {
        "input": _digest(clip_files),
        "input_frames": clip.frames,
        "styles": [_digest([path]) for path in styles.paths],
        "frame_size": list(size),
        "frame_steps": frame_steps,
        "temporal_weight": temporal_weight,
        "config": json.loads(json.dumps(settings, default=list)),
    }


def _prepare_work(folder: Path, fingerprint: dict, output: Path) -> int:
    """Create or check the work folder; return how many frames (from the first) are already finished."""
    manifest = folder / MANIFEST
    finished = 0
    if folder.is_dir():
        for record, what, todo in ((manifest, "the record", f"delete {folder} to start over"),
                                   (folder / FRAME_LOG, "the frame log", "delete it to continue")):
            found = paths.kind(record)
            if found not in (paths.MISSING, paths.FILE):
                raise ConfigError(f"{what} {record} is {found}, not a file; {todo}")
        if manifest.exists():
            try:
                recorded = json.loads(manifest.read_text())
            except (OSError, ValueError):
                recorded = None
            # A record beside no frame (a run that failed or stopped before its first) protects
            # nothing: the new run replaces it rather than being refused.
            if recorded != fingerprint and any(folder.glob("frame_*.png")):
                differs = sorted(key for key in fingerprint if not recorded or recorded.get(key) != fingerprint[key])
                what = ", ".join(differs) if differs else "its record is unreadable"
                raise ConfigError(f"{folder} holds frames of another run (different {what}); delete it, "
                                  "or re-run with the same settings to continue it")
        elif any(folder.glob("frame_*.png")):
            raise ConfigError(f"{folder} already holds frame_*.png files not made by nst video; "
                              f"delete them or choose another -o than {output}")
        while (folder / video_io.frame_name(finished)).exists():
            finished += 1
        finished = min(finished, fingerprint["input_frames"])
        for index in range(finished):
            _check_frame(folder, folder / video_io.frame_name(index), tuple(fingerprint["frame_size"]))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if finished == 0:  # a new run, or one that left no frame: this run's record
            (folder / FRAME_LOG).unlink(missing_ok=True)
            text = json.dumps(fingerprint, indent=1)
            atomic_write(manifest, lambda tmp: Path(tmp).write_text(text))
    except OSError as exc:
        raise ImageError(f"cannot create the work folder {folder} ({exc.strerror or exc}); "
                         "choose another -o path") from None
    return finished


def _check_frame(folder: Path, path: Path, size: tuple[int, int]) -> None:
    """A finished frame is read back to warp the next one and to encode the video: check it first
    (its header only), so a frame replaced by a folder or a damaged file is one error, not a crash."""
    again = f"delete it to continue from the frame before it, or delete {folder} to start over"
    found = paths.kind(path)
    if found != paths.FILE:
        raise ConfigError(f"{path} is {found}, not a frame this run wrote; {again}")
    try:
        with Image.open(path, formats=("PNG",)) as image:
            good = image.size == size
    except Exception:  # Pillow raises many kinds for a damaged file; all mean the same here
        good = False
    if not good:
        raise ConfigError(f"{path} is damaged (not a PNG of {size[0]}x{size[1]} px); {again}")


def _read_log(folder: Path) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    try:
        lines = (folder / FRAME_LOG).read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by an interruption
        # A row is numbers (or nulls) by name with an integer index; anything else was not written here.
        if isinstance(row, dict) and isinstance(row.get("index"), int) and all(
                value is None or isinstance(value, (int, float)) for value in row.values()):
            rows[row["index"]] = row
    return rows


def _append_log(folder: Path, row: dict) -> None:
    with open(folder / FRAME_LOG, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def _quantised(image: torch.Tensor) -> torch.Tensor:
    """The result as its PNG will hold it (8 bits per channel): what a resumed run reads back."""
    return image.detach().float().cpu().clamp(0, 1).mul(255).add(0.5).floor().div(255)


def _load_frame(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return pil_to_tensor(image.convert("RGB"))


def _saved_frames(folder: Path, count: int):
    """The finished frames read back one at a time, for the encoder."""
    for index in range(count):
        with Image.open(folder / video_io.frame_name(index)) as image:
            yield image.convert("RGB")


def _frame_loss(losses: dict) -> float:
    """The objective without the temporal term: what the frame would score in `nst stylize`."""
    return float(losses.get("loss", 0.0)) - float(losses.get("temporal", 0.0))


def _notify(callbacks, event: str, *args) -> None:
    # Plain engine callbacks may watch a video's steps too; they just have no frame events.
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(*args)


def _kept(finished: int, total: int, folder: Path) -> str:
    if finished == 0:
        return f"no frame of {total} was finished, so nothing is kept"
    return f"{finished} of {total} frames are kept in {folder}; run the same command again to continue"


def _discard_work(folder: Path, created: bool) -> None:
    """Remove what a run that finished no frame wrote: the folder if it made it, else its record."""
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in (MANIFEST, FRAME_LOG):
        try:
            (folder / name).unlink(missing_ok=True)
        except OSError:
            pass


def stylize_video(
    source: PathLike,
    styles: PathLike | Sequence[PathLike],
    output: PathLike,
    config: Config = Config(),
    *,
    frame_steps: int = VIDEO_FRAME_STEPS,
    temporal_weight: float = VIDEO_TEMPORAL_WEIGHT,
    callbacks: Sequence[VideoCallback] = (),
    folder_rate: Fraction | float = video_io.FOLDER_RATE,
    save_motion: bool = False,
) -> VideoResult:
    """Stylise every frame of `source` (a video file or a folder of frames) into `output`.

    `output` is a video file (container from its extension) or a folder for numbered PNGs.
    `save_motion` also writes each later frame's flow, mask, warped previous result and start image
    into `motion_folder(output)`.
    """
    from nstcli.video.flow import FlowEstimator
    from nstcli.network.load import min_side
    from nstcli.stylize.sizes import fit_to_size

    started = time.perf_counter()
    source, output = Path(source), Path(output)
    if frame_steps < 0:
        raise ConfigError(f"--frame-steps must be 0 or more, got {frame_steps}")
    if not math.isfinite(temporal_weight) or temporal_weight < 0:
        raise ConfigError(f"--temporal-weight must be a finite number >= 0, got {temporal_weight}")
    clip = video_io.open_clip(source, folder_rate=folder_rate)
    style = PreparedStyle(styles, config.style_blend)
    plan = check_output(source, style.paths, output, clip)
    size = video_io.frame_size(clip.size, config.size, even=plan is not None and plan.encoder != "gif")
    need = min_side(config)
    _check_frame_size(source, size, config, need)
    style_final = max(1, round(max(size) * config.style_scale))
    for path, image in zip(style.paths, style.images()):
        fit_to_size(path, image, style_final, need, scale=config.style_scale)

    # The first frame as `nst stylize` would do it (at the frame size actually used); later frames a
    # single scale at full size, warm-started, with no checkpoints of their own.
    first_config = config.replace(size=max(size), checkpoint_every=0)
    later_config = first_config.replace(steps=frame_steps, start_size=None, first_steps=None)
    # Every frame's scales and tiles (and the memory budget) are checked now, as single.stylize would at
    # frames 1 and 2: a run refused there must cost no computing and leave no work folder behind.
    device = resolve_device(config.device)
    single.plan_scales(first_config, size, style, device)
    if clip.frames > 1:
        single.plan_scales(later_config, size, style, device, extra_terms=True)
    folder = work_folder(output)
    fingerprint = _fingerprint(source, clip, style, first_config, size, frame_steps, temporal_weight)
    created = not folder.exists()
    finished = _prepare_work(folder, fingerprint, output)
    log = _read_log(folder)
    resumed_from = finished
    estimator = FlowEstimator()

    def own_start(frame: Image.Image) -> torch.Tensor:
        # What nst stylize would start this frame from, at the frame size (a single scale).
        content = pil_to_tensor(frame)
        style_size = round(max(size) * config.style_scale)
        return initial_image(config.init, content, lambda: style.tensors(style_size, need, torch.device("cpu"))[0],
                                    config.seed).cpu()

    _notify(callbacks, "on_video_start", clip.frames, finished)
    index = read = 0
    precision = None
    try:
        previous_content = previous_result = None
        frames = video_io.read_frames(clip, size)
        try:
            for index, frame in enumerate(frames):
                read = index + 1
                if index < finished:
                    if index == finished - 1:  # the last finished frame: what the next one warps
                        previous_result = _load_frame(folder / video_io.frame_name(index))
                    previous_content = frame
                    continue
                frame_started = time.perf_counter()
                error = None
                with warnings.catch_warnings():
                    if index > 0:  # said once, for the first frame, not once per frame
                        warnings.simplefilter("ignore", RandomWeightsWarning)
                        warnings.simplefilter("ignore", PrecisionWarning)
                    if previous_result is None:
                        result = single.stylize(frame, style, None, first_config, callbacks, save_on_interrupt=False)
                    else:
                        motion = estimator.motion(previous_content, frame)
                        warped = motion.warp(previous_result)
                        mask = motion.mask_tensor()
                        start = start_image(warped, mask, own_start(frame))
                        if save_motion:
                            write_motion(motion_folder(output), index, motion, warped, start)

                        def temporal(shape, device, warped=warped, mask=mask):
                            return [TemporalTerm(warped.to(device), mask.to(device), temporal_weight)]

                        result = single.stylize(frame, style, None, later_config, callbacks, save_on_interrupt=False,
                                                init=start, extra_terms=temporal)
                previous_result = _quantised(result.image)
                precision = result.precision
                if index > 0:
                    error = float(temporal_error(previous_result, warped, mask))
                path = folder / video_io.frame_name(index)
                save_image(previous_result, path)
                previous_content = frame
                finished = index + 1
                row = {"index": index, "seconds": round(time.perf_counter() - frame_started, 4),
                       "loss": _frame_loss(result.losses), "temporal_error": error}
                _append_log(folder, row)
                log[index] = row
                report = FrameReport(index=index, total=clip.frames, seconds=row["seconds"], loss=row["loss"],
                                     temporal_error=error)
                _notify(callbacks, "on_frame", report)
        finally:
            frames.close()
        if read < clip.frames:
            # The container promised more frames than it decoded (a truncated file): stylise what
            # exists, and say what was lost rather than hand over a shorter video without a word.
            warnings.warn(f"video {source} declares {clip.frames} frames but only {read} could be read (the file "
                          f"is cut short or damaged); the output has {read}", NSTWarning, stacklevel=2)
            clip = dataclasses.replace(clip, frames=read)
        if plan is not None:
            _notify(callbacks, "on_encode", output)
            video_io.write_video(plan, clip, _saved_frames(folder, finished))
            shutil.rmtree(folder, ignore_errors=True)
    except BaseException as exc:
        if finished == 0:
            # Nothing to continue from: leave no work folder (or record) that a corrected command
            # would have to get past.
            _discard_work(folder, created)
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            where = (f"while encoding {output}" if finished >= clip.frames
                     else f"at frame {index + 1} of {clip.frames}")
            raise Interrupted(f"interrupted {where}; {_kept(finished, clip.frames, folder)}") from None
        if isinstance(exc, ImageError) and ("No space left" in str(exc) or "Disk quota" in str(exc)):
            raise ImageError(f"{exc}; free some space: {_kept(finished, clip.frames, folder)}") from None
        if isinstance(exc, OSError):
            raise ImageError(f"cannot write into {folder} ({exc.strerror or exc}); "
                             f"{_kept(finished, clip.frames, folder)}") from None
        raise
    finally:
        _notify(callbacks, "on_video_end")

    errors = [log[i]["temporal_error"] for i in range(1, finished) if log.get(i, {}).get("temporal_error") is not None]
    return VideoResult(
        output=output,
        frames=finished,
        seconds=time.perf_counter() - started,
        temporal_error=sum(errors) / len(errors) if errors else None,
        resumed_from=resumed_from,
        frame_log=[log[i] for i in sorted(log)],
        precision=precision,
    )

