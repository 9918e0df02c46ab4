"""What a path names, found without opening it: the checks every reader runs before it reads.

Opening a FIFO blocks until a writer appears (forever, for a typo'd path) and a device never ends,
so readers open only regular files. A symbolic link loop makes `Path.exists()` answer False, which
would be reported as a missing file; it is told apart here so the message can say what is wrong.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MISSING = "missing"
LOOP = "a symbolic link loop"
FOLDER = "a folder"
FILE = "a file"
OTHER = "not a regular file"  # a FIFO, socket or device
DENIED = "not accessible"  # a parent folder cannot be searched


def kind(path: str | os.PathLike) -> str:
    """One of MISSING, LOOP, FOLDER, FILE, OTHER or DENIED for `path` (symbolic links followed)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return LOOP
        if exc.errno in (errno.EACCES, errno.EPERM):
            return DENIED
        return MISSING  # ENOENT, ENOTDIR (a parent is a file), a dangling link, a name too long
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISREG(mode):
        return FILE
    return OTHER


def check_file(path: str | os.PathLike, error: type[Exception], messages: dict[str, str]) -> Path:
    """`path`, unless it names something `messages` has a message for (MISSING, LOOP, FOLDER, OTHER,
    DENIED): then `error` with that message, `{path}` filled in. The one check every reader runs; the
    messages are the caller's, since each says what to give instead."""
    found = kind(path)
    if found in messages:
        raise error(messages[found].format(path=path))
    return Path(path)


def resolve(path: str | os.PathLike) -> Path:
    """`Path.resolve()`, except that a symbolic link loop gives the absolute path instead of an error.

    (Python before 3.13 raises RuntimeError for a loop; a loop leads nowhere, so it equals no folder.)
    """
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        return Path(path).absolute()
