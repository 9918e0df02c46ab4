"""The one way nstcli puts bytes in a file: atomically, and a failure told in one line.

Every file a command writes (result images, checkpoints, previews, contact sheets, loss curves, model
files, ONNX exports, videos, a video's frames and records, the weights cache) is written here:
- into a temporary file beside the target, renamed over it once every byte is on the disk (flushed
  and fsync'd), so a full disk, a crash or Ctrl-C never leaves a half-written file, and the file it
  would have replaced (the previous checkpoint, an earlier frame) is still whole;
- through `_write_all`, the only call that hands bytes to the operating system. The writers of other
  libraries (Pillow, safetensors, torch, PyAV) are given a file object that writes through it, or
  their bytes in memory, so their own ways of reporting a failed write (an "encoder error", a Rust
  I/O error, a C++ assertion, an FFmpeg callback error) never reach the user: the OSError that
  caused them does, as one `WriteError` naming the file, why it failed and what to do.

Why a write fails and what helps: a full disk or quota (free some space), a read-only mount or a
folder without permission, a folder removed while the run was going. `elsewhere` is what the caller
offers instead ("choose another -o path", "set NSTCLI_CACHE to a writable folder"); the caller adds
what was kept (a checkpoint, finished frames). No torch, no Pillow.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nstcli.errors import ImageError, WriteError
from nstcli.outputs import mode_for

PathLike = str | os.PathLike
OTHER_PATH = "choose another -o path"
FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
GONE = (errno.ENOENT, errno.ENOTDIR)


def _write_all(fd: int, data) -> int:
    """Every byte of `data` to `fd`: a disk that fills up takes part of a write, then refuses the rest."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])
    return done


class _Sink(io.RawIOBase):
    """A binary file object over the temporary file whose writes go through `_write_all`.

    It has no fileno(): Pillow would then encode straight into the descriptor from C and report a
    full disk as "encoder error -2", with the reason lost. The first OSError is kept in `failure`,
    because libraries that call write() re-raise it as their own exception (PyAV's callback error).
    """

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd
        self.failure: OSError | None = None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def write(self, data) -> int:
        try:
            return _write_all(self._fd, data)
        except OSError as exc:
            self.failure = self.failure or exc
            raise

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)


def _reason(exc: OSError, folder: Path, elsewhere: str | None) -> tuple[str, str]:
    """(why the write failed, what to do) for an OSError met writing into `folder`."""
    code = exc.errno
    if code in GONE:
        why, fix = f"its folder {folder} was removed during the run", None
    elif code in FULL:
        why, fix = exc.strerror or "No space left on device", "free some space"
    elif code in NOT_WRITABLE:
        why, fix = exc.strerror or "Permission denied", None if elsewhere else f"make {folder} writable"
    else:
        why, fix = exc.strerror or str(exc), None
    return why, " or ".join(part for part in (fix, elsewhere) if part)


def describe(path: PathLike, exc: OSError, *, what: str = "", elsewhere: str | None = OTHER_PATH) -> WriteError:
    """The WriteError for `exc` raised while writing `path`: 'cannot write [what ]PATH (why); what to do'."""
    path = Path(path)
    why, todo = _reason(exc, path.parent if str(path.parent) else Path("."), elsewhere)
    label = f"{what} " if what else ""
    return WriteError(f"cannot write {label}{path} ({why})" + (f"; {todo}" if todo else ""), path, exc.errno)


def make_folder(folder: PathLike, *, what: str = "folder", elsewhere: str | None = OTHER_PATH) -> Path:
    """Create `folder` (and its parents) for a run's files; a WriteError saying why it cannot be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why, todo = _reason(exc, folder.parent, elsewhere)
        if exc.errno in GONE:  # mkdir makes missing parents: this is a parent that is a file
            why = exc.strerror or str(exc)
        raise WriteError(f"cannot create the {what} {folder} ({why})" + (f"; {todo}" if todo else ""),
                         folder, exc.errno) from None
    return folder


@contextmanager
def atomic_file(path: PathLike, *, what: str = "", elsewhere: str | None = OTHER_PATH,
                no_clobber: bool = False) -> Iterator[_Sink]:
    """A binary file object whose contents become `path` when the block ends without an error.

    With `no_clobber` the result is hard-linked into place, which fails if `path` appeared while the
    run was computing, rather than replacing it. Any failure leaves `path` as it was (absent, or the
    previous file) and no temporary file; one caused by the file system is a WriteError.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    except OSError as exc:
        raise describe(path, exc, what=what, elsewhere=elsewhere) from None
    sink = _Sink(fd)
    closed = False
    try:
        with _failures_as_write_errors(sink, path, what, elsewhere):
            yield sink
        if sink.failure is not None:  # a writer that carried on past a failed write: the file is incomplete
            raise describe(path, sink.failure, what=what, elsewhere=elsewhere)
        try:
            os.fsync(fd)  # a full disk may refuse the data only now, and a rename must not precede it
            closed = True
            os.close(fd)
            os.chmod(tmp, mode_for(path))  # mkstemp's 0600 would keep the result from whoever it is for
            _put_in_place(tmp, path, no_clobber)
        except FileExistsError:
            raise ImageError(f"output {path} already exists; remove it or drop --no-clobber") from None
        except OSError as exc:
            raise describe(path, exc, what=what, elsewhere=elsewhere) from None
    finally:
        if not closed:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:  # gone already (renamed into place), or its folder went away with it
            pass


@contextmanager
def stream_into(path: PathLike, *, append: bool = False, what: str = "",
                elsewhere: str | None = OTHER_PATH) -> Iterator[_Sink]:
    """A binary file object writing `path` in place (appending with `append`), through `_write_all`.

    For the two files that are not results: a download being received (the caller checks, uses and
    deletes it) and a log a line at a time (a line cut short is skipped when it is read). A failed
    write is a WriteError; what was written before it stays for the caller.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise describe(path, exc, what=what, elsewhere=elsewhere) from None
    sink = _Sink(fd)
    try:
        with _failures_as_write_errors(sink, path, what, elsewhere):
            yield sink
    finally:
        os.close(fd)


@contextmanager
def _failures_as_write_errors(sink: _Sink, path: Path, what: str, elsewhere: str | None) -> Iterator[None]:
    """Whatever a writer made of a failed write (its own exception type), the OSError underneath is the
    reason: raised as the WriteError that names `path`."""
    try:
        yield
    except Exception:
        if sink.failure is not None:
            raise describe(path, sink.failure, what=what, elsewhere=elsewhere) from None
        raise


def _put_in_place(tmp: str, path: Path, no_clobber: bool) -> None:
    if not no_clobber:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno in FULL + NOT_WRITABLE + GONE:
            raise
        # A file system without hard links: check, then rename.
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def write_file(path: PathLike, produce: Callable[[io.RawIOBase], object] | bytes, **how) -> Path:
    """Write `path` atomically from `produce(handle)` (a writer given a binary file object) or bytes.

    `how` is atomic_file's: `what`, `elsewhere`, `no_clobber`.
    """
    with atomic_file(path, **how) as handle:
        if isinstance(produce, (bytes, bytearray, memoryview)):
            handle.write(produce)
        else:
            produce(handle)
    return Path(path)
