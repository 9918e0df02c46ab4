"""A file's SHA-256, read a block at a time: the one hash of a file's bytes in nstcli (downloaded and
packaged weights checked, a training run's style and a video run's inputs recognised)."""

from __future__ import annotations

import hashlib
import os

BLOCK = 1 << 20  # a 548 MB download is hashed without ever being held in memory


def feed_file(digest, path: str | os.PathLike) -> None:
    """Add a file's bytes to `digest` (a hashlib object), a block at a time."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)


def sha256_of(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    feed_file(digest, path)
    return digest.hexdigest()
