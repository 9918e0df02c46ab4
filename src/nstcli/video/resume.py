"""What lets `nst video` continue where it stopped: the work folder's record and its finished frames.

Every finished frame is written at once as a PNG into a work folder beside the output (OUT_frames/
for OUT.mp4; for a folder output, the folder itself), with a record of the run's settings (the
fingerprint) and a log of each frame's figures. A re-run of the same command continues after the
last finished frame; a work folder of another run is refused rather than mixed with this one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from nstcli import paths
from nstcli.config.fields import Config, as_dict
from nstcli.digests import feed_file
from nstcli.errors import ConfigError, ImageError
from nstcli.image.io import pil_to_tensor
from nstcli import writes
from nstcli.stylize.styles import PreparedStyle
from nstcli.video.formats import frame_name
from nstcli.video.reader import Clip, frame_files

# Keys that do not change a frame's pixels (beyond rounding): a resumed run may differ in them. The
# precision is the machine's, like the device: a clip resumed on another machine keeps its frames.
_RUN_ONLY_KEYS = {"checkpoint_every", "contact_sheet", "loss_curve", "device", "precision"}
MANIFEST = ".nst-video.json"
FRAME_LOG = ".nst-frames.jsonl"


def _digest(paths: Sequence[Path]) -> str:
    """SHA-256 of the files' bytes, in order (a folder clip: its frame files, names included)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8", "surrogateescape") + b"\0")
        try:
            feed_file(digest, path)
        except OSError as exc:
            raise ImageError(f"{path} cannot be read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def run_fingerprint(source: Path, clip: Clip, styles: PreparedStyle, config: Config, size,
                    frame_steps: int, temporal_weight: float) -> dict:
    """Everything a frame's pixels depend on, to recognise the run a work folder belongs to.

    Inputs are identified by their bytes, not their names: a clip replaced by another under the same
    name (or a style image repainted) is another run, and its frames must not be mixed with these.
    """
    settings = {key: value for key, value in as_dict(config).items() if key not in _RUN_ONLY_KEYS}
    clip_files = frame_files(source) if clip.folder else [source]
    return {
        "input": _digest(clip_files),
        "input_frames": clip.frames,
        "styles": [_digest([path]) for path in styles.paths],
        "frame_size": list(size),
        "frame_steps": frame_steps,
        "temporal_weight": temporal_weight,
        "config": json.loads(json.dumps(settings, default=list)),
    }


def prepare_work(folder: Path, fingerprint: dict, output: Path) -> int:
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
        while (folder / frame_name(finished)).exists():
            finished += 1
        finished = min(finished, fingerprint["input_frames"])
        for index in range(finished):
            _check_frame(folder, folder / frame_name(index), tuple(fingerprint["frame_size"]))
    writes.make_folder(folder, what="work folder")
    if finished == 0:  # a new run, or one that left no frame: this run's record
        try:
            (folder / FRAME_LOG).unlink(missing_ok=True)
        except OSError as exc:
            raise writes.describe(folder / FRAME_LOG, exc) from None
        writes.write_file(manifest, json.dumps(fingerprint, indent=1).encode())
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


def read_log(folder: Path) -> dict[int, dict]:
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


def append_log(folder: Path, row: dict) -> None:
    with writes.stream_into(folder / FRAME_LOG, append=True, elsewhere=None) as handle:
        handle.write((json.dumps(row) + "\n").encode())

def load_frame(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return pil_to_tensor(image.convert("RGB"))


def saved_frames(folder: Path, count: int):
    """The finished frames read back one at a time, for the encoder."""
    for index in range(count):
        with Image.open(folder / frame_name(index)) as image:
            yield image.convert("RGB")


def what_is_kept(finished: int, total: int, folder: Path) -> str:
    if finished == 0:
        return f"no frame of {total} was finished, so nothing is kept"
    return f"{finished} of {total} frames are kept in {folder}; run the same command again to continue"


def discard_work(folder: Path, created: bool) -> None:
    """Remove what a run that finished no frame wrote: the folder if it made it, else its record."""
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in (MANIFEST, FRAME_LOG):
        try:
            (folder / name).unlink(missing_ok=True)
        except OSError:
            pass

