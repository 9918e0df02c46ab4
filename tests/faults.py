"""Faults where files are written: a disk that fills up mid-write, a read-only folder, a real full disk.

`DiskFills` replaces the one call that hands bytes to the operating system (writes._write_all): the
write into the chosen file takes part of its bytes, then fails with ENOSPC (or another errno), as a
filling disk does. `ReadOnly` makes creating a file in one folder fail. `on_a_full_disk` runs a
command with a folder on a real tmpfs that has no room left (Linux, where a mount namespace can be
made; the test is skipped elsewhere), so no part of the writing is faked at all.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nstcli import writes

MESSAGES = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system",
            errno.EACCES: "Permission denied", errno.EDQUOT: "Disk quota exceeded"}


def _target_of(fd: int) -> Path | None:
    """The file an open descriptor writes: the target itself, or the temporary .STEM.XXXX.SUFFIX beside it."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def _is_for(written: Path, target: Path) -> bool:
    if written == target:
        return True
    return (written.parent == target.parent and written.name.startswith(f".{target.stem}.")
            and written.name.endswith(target.suffix))


class DiskFills:
    """The disk fills up while writing the `skip + 1`-th file matching `match` (a path, or a test on one).

    That write takes half of its bytes and then raises OSError(code); later writes to it fail at once.
    `hits` lists the files it failed.
    """

    def __init__(self, monkeypatch, match, code: int = errno.ENOSPC, skip: int = 0):
        self.match = match if callable(match) else (lambda path, target=Path(match): _is_for(path, target))
        self.code, self.skip = code, skip
        self.seen: list[Path] = []
        self.hits: list[Path] = []
        self.real = writes._write_all
        monkeypatch.setattr(writes, "_write_all", self)

    def __call__(self, fd: int, data) -> int:
        written = _target_of(fd)
        if written is None or not self.match(written):
            return self.real(fd, data)
        if written in self.hits:
            raise OSError(self.code, MESSAGES.get(self.code, os.strerror(self.code)))
        if written not in self.seen:
            self.seen.append(written)
        if len(self.seen) <= self.skip:
            return self.real(fd, data)
        self.hits.append(written)
        view = memoryview(data).cast("B")
        os.write(fd, view[: max(1, len(view) // 2)])  # what reached the disk before it filled up
        raise OSError(self.code, MESSAGES.get(self.code, os.strerror(self.code)))


class ReadOnly:
    """Creating a file in `folder` or below fails with `code` (a read-only mount: EROFS; no permission: EACCES)."""

    def __init__(self, monkeypatch, folder: Path, code: int = errno.EROFS):
        real = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and (Path(dir) == Path(folder) or Path(folder) in Path(dir).parents):
                raise OSError(code, MESSAGES[code])
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write left behind in `folder` (and below)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*") if path.is_file())


def _mount_works() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=64k nst-probe "$0"', folder],
                               capture_output=True)
    return probe.returncode == 0


FULL_DISK_POSSIBLE = _mount_works()
needs_full_disk = pytest.mark.skipif(not FULL_DISK_POSSIBLE, reason="no mount namespace for a tmpfs here")


def on_a_full_disk(folder: Path, args: list[str], cwd: Path, env: dict | None = None):
    """Run `python -m nstcli ARGS` with `folder` a tmpfs that is full (a filler file takes every byte).

    Returns (the completed process, the files left in `folder` when the command ended, filler excluded).
    """
    folder.mkdir(parents=True, exist_ok=True)
    listing = cwd / "left-on-the-full-disk.txt"
    script = ('mount -t tmpfs -o size=256k nst-full "$0" || exit 97; cat /dev/zero > "$0/.filler" 2>/dev/null; '
              '"$@"; code=$?; (cd "$0" && find . -mindepth 1 ! -name .filler | sort) > "$LISTING"; exit $code')
    environment = {**os.environ, **(env or {}), "LISTING": str(listing)}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(folder), sys.executable, "-m", "nstcli", *args],
                          cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode != 97, done.stderr
    return done, listing.read_text().split()
