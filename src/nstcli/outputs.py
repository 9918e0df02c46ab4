"""The one check of an output path, run by every command that writes before it does any work.

A mistake in `-o` is found in a fraction of a second, not after minutes of computing, and worded the
same whichever command made it:
- usage errors in the name itself (exit 2): a folder, an extension the command does not write, one
  of the command's own inputs however it is spelled (`./x.png`, a symbolic or a hard link);
- a folder that cannot be made or written (exit 1): a parent that is a file or a link loop, no
  permission, a read-only mount (found by creating a file, the only test that also holds for root);
- an existing file with `no_clobber` (exit 1).
Missing parent folders are created, as scripts writing into fresh folders expect. Work folders (a
model's `_training/`, a video's `_frames/`) are checked the same way without being created.

Also here: the permissions every written file gets (the umask's, as a plain `open()` gives).
No torch, no Pillow: the CLI runs this before importing either.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from nstcli import paths
from nstcli.errors import ConfigError, ImageError

# Pillow format per output image extension (image/io.py writes them); the list every command offers.
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
IMAGE_FORMATS = tuple(extension.lstrip(".") for extension in OUTPUT_FORMATS)  # --format's choices

PathLike = str | os.PathLike


def check_output(path: PathLike, suffixes: Iterable[str], example: str, *, inputs: Iterable = (),
                 also: Iterable = (), no_clobber: bool = False) -> Path:
    """Everything about an output file that can be known before computing it; creates its folder.

    `suffixes` are the extensions the command writes; `example` the file name suggested when `path`
    is a folder; `inputs` the files the command reads (an output among them is refused); `also` the
    files it deletes or rewrites beside the output (see `refuse_overwriting_inputs`).
    """
    path = check_name(path, suffixes, example)
    refuse_overwriting_inputs(path, list(inputs), also=also)
    if no_clobber and path.exists():
        raise ImageError(f"output {path} already exists; remove it or drop --no-clobber")
    prepare_folder(path.parent if str(path.parent) else Path("."))
    return path


def check_name(path: PathLike, suffixes: Iterable[str], example: str) -> Path:
    """Usage errors in an -o value (exit 2): it names a folder, or has an extension not in `suffixes`."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; give a file name such as {path / example}")
    suffixes = list(suffixes)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ConfigError(f"output {path} has unknown extension '{suffix or '(none)'}'; use one of "
                          f"{', '.join(suffixes)}")
    return path


def prepare_folder(folder: PathLike, what: str = "output folder", create: bool = True) -> Path:
    """Make sure `folder` exists (or, with `create=False`, could be made) and can be written; ImageError if not."""
    folder = Path(folder)
    for step in (folder, *folder.parents):
        found = paths.kind(step)
        if found == paths.LOOP:
            raise ImageError(f"cannot create the {what} {folder}: {step} is a symbolic link loop; "
                             "choose another -o path")
        if found in (paths.FILE, paths.OTHER):
            raise ImageError(f"cannot create the {what} {folder}: {step} is a file; choose another -o path")
        if found == paths.FOLDER:
            if not create:
                _probe_writable(step, what)
                return folder
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"cannot create the {what} {folder} ({exc.strerror or exc}); "
                         "choose another -o path") from None
    _probe_writable(folder, what)
    return folder


def _probe_writable(folder: Path, what: str = "output folder") -> None:
    """Create and delete a file in `folder`: the only test that also holds for root and read-only mounts."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"{what} {folder} is not writable; choose another -o path")
    try:
        handle, probe = tempfile.mkstemp(prefix=".nst-write-test-", dir=folder)
    except OSError as exc:
        raise ImageError(f"{what} {folder} is not writable ({exc.strerror or exc}); "
                         "choose another -o path") from None
    os.close(handle)
    os.unlink(probe)


def refuse_overwriting_inputs(outputs, inputs, also=()) -> None:
    """ConfigError (exit 2) if an output is the same file as an input, however the two are spelled.

    `outputs` and `inputs` are paths or iterables of paths. `./x.png`, a symbolic link or a hard
    link to x.png all name the same file (same device and inode), and writing the output there
    would replace a file the run reads. Inputs that do not exist are left to the readers.
    `also` are files the run deletes or rewrites beside its single output (old checkpoints, the
    contact sheet and loss curve): an input among them is refused too.
    """
    outputs = [outputs] if isinstance(outputs, (str, os.PathLike)) else list(outputs)
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    identities = {}
    for given in inputs:
        identity = _identity(given)
        if identity is not None:
            identities.setdefault(identity, given)
    for output in outputs:
        source = identities.get(_identity(output))
        if source is not None:
            same = "" if os.fspath(source) == os.fspath(output) else f" (the same file as {source})"
            raise ConfigError(f"output {output} is also an input{same}; writing it would replace that "
                              "input: choose another -o")
    for leftover in also:
        source = identities.get(_identity(leftover))
        if source is not None:
            same = "" if os.fspath(source) == os.fspath(leftover) else f" (that is {leftover})"
            raise ConfigError(f"input {source}{same} is one of the files a run into {outputs[0]} deletes or "
                              "rewrites (old checkpoints, contact sheet, loss curve); copy it elsewhere first or "
                              "choose another -o")


def _identity(path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except (OSError, ValueError, TypeError):  # TypeError: an in-memory image, not a path
        return None
    return status.st_dev, status.st_ino


def mode_for(path: PathLike) -> int:
    """The permissions a file written to `path` gets: those of the file it replaces, else the umask's.

    Temporary files (mkstemp) are created for their owner only (0600); a result is for whoever the
    user means to share it with, so it gets the mode a plain open() would.
    """
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere set and restore it (there is no getter)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
