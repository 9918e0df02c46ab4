"""Many content images x many styles in one process: run a planned batch (batch_plan.py), item by item.

Starting `nst stylize` once per file pays for Python, torch and the network every time. A batch
loads the network once and builds each style's Gram matrices once (`single.PreparedStyle`), then
stylizes every content image with every style.

An item whose output exists is skipped (unless `overwrite`), so a re-run resumes. A bad content
image or a failed optimisation marks that item failed and the batch goes on; what would fail every
item (weights, a bad style image, the output folder) stops it before the first item. Ctrl-C stops it
with the current item unwritten, so a re-run redoes that item.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nstcli.config.fields import Config
from nstcli.errors import ConfigError, ImageError, Interrupted, RandomWeightsWarning, RunError, WriteError
from nstcli.image.io import check_output_path
from nstcli.jobs.items import ItemResult
from nstcli.reports import Callback, notify
from nstcli.stylize.batch_plan import BatchItem


@dataclass
class BatchRun:
    """A started batch: `len()` items planned; iterating stylizes them one by one, yielding ItemResults."""

    items: list[BatchItem]
    results: Iterator[ItemResult]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ItemResult]:
        return self.results


def run_batch(
    items: Sequence[BatchItem],
    config: Config = Config(),
    *,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
) -> BatchRun:
    """Load the network and open the styles now, so what would fail every item fails here; then run lazily.

    `callbacks` hear the weights' download (once, before any item), each item's start (`on_item`)
    and its engine steps (e.g. a per-image progress bar).
    """
    # Imported here, not at the top: planning (nst batch --plan) needs none of the network code.
    from nstcli.network.sources import warn_if_random
    from nstcli.runtime import resolve_device, resolve_precision
    from nstcli.network.load import load_network
    from nstcli.stylize.single_plan import network_settings
    from nstcli.stylize.styles import PreparedStyle

    items = list(items)
    # Each style is used on its own, so blend weights (from a --config file; nst batch has no
    # --style-blend) would be silently ignored: refuse them instead.
    if config.style_blend:
        raise ConfigError("'style_blend' does not apply to nst batch: every style is used on its own; "
                          "drop it (or run nst stylize to blend styles)")
    if not any(overwrite or not item.output.exists() for item in items):
        # Everything is done (e.g. a re-submitted array task whose items another run finished):
        # nothing to load, and ImageNet weights are half a gigabyte to read.
        return BatchRun(items, _results(items, {}, config, overwrite, callbacks))
    # Where and in what precision every item runs, decided once for the batch (the precision's warning
    # said here, not per item).
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    todo = [item for item in items if overwrite or not item.output.exists()]
    prepared: dict[Path, PreparedStyle] = {}
    for item in todo:
        if item.style not in prepared:
            prepared[item.style] = PreparedStyle(item.style)
            prepared[item.style].images()
    # A budget or tiling the run would refuse is a usage error of the whole batch: said now, before
    # the output folder exists or the network is loaded, not at the first item.
    _check_plans(todo, prepared, config, device)
    # Checks (and creates) the output folder itself; the file name is only there to satisfy the check.
    check_output_path(items[0].outdir / PurePosixPath(items[0].name).name)
    # Say it once for the batch, here (as for the precision); the per-item runs below are told not to
    # repeat either.
    network = network_settings(config)
    warn_if_random(network.weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        load_network(network, device, precision, callbacks)  # cached: every item reuses it
    return BatchRun(items, _results(items, prepared, config, overwrite, callbacks))


def _check_plans(items: Sequence[BatchItem], prepared, config: Config, device) -> None:
    """single_plan.plan_scales for every item from its content's header (no pixel decoded); ConfigError if any
    is refused. An unreadable content image is left to fail its own item later."""
    from PIL import Image

    from nstcli.stylize.single_plan import plan_scales

    seen = set()
    for item in items:
        try:
            with Image.open(item.content) as image:
                size = image.size
        except Exception:  # noqa: BLE001 - the item's own run reports it, and fails only that item
            continue
        key = (size, item.style, item.style_mask is not None)
        if key not in seen:
            seen.add(key)
            plan_scales(config, size, prepared[item.style], device, masks=item.masks())


def _results(items, prepared, config, overwrite, callbacks) -> Iterator[ItemResult]:
    from nstcli.errors import PrecisionWarning
    from nstcli.stylize import single
    from nstcli.stylize.styles import PreparedStyle

    for item in items:
        if item.output.exists() and not overwrite:
            yield ItemResult(item, "skipped", details={"precision": None})
            continue
        started = time.perf_counter()
        before = _identity(item.output)
        try:
            with warnings.catch_warnings():
                # Said once by run_batch; not again for every item.
                warnings.simplefilter("ignore", RandomWeightsWarning)
                warnings.simplefilter("ignore", PrecisionWarning)
                if item.style not in prepared:
                    # Only when all its outputs were there as the batch started and one has gone since.
                    prepared[item.style] = PreparedStyle(item.style)
                notify(callbacks, "on_item", item.name)
                done = single.stylize(item.content, prepared[item.style], item.output, config=config,
                                      callbacks=callbacks, save_on_interrupt=False, masks=item.masks())
            result = ItemResult(item, "done", time.perf_counter() - started, details={"precision": done.precision})
        except (ImageError, RunError) as exc:
            result = ItemResult(item, "failed", time.perf_counter() - started, str(exc), {"precision": None})
        except WriteError as exc:
            # A full disk or an unwritable folder would fail every item after this one, each after
            # minutes of computing: stop, keeping what is finished.
            raise WriteError(f"{exc}; the batch stopped there: finished outputs are kept and running the same "
                             "command again skips them", exc.path, exc.errno) from None
        except (Interrupted, KeyboardInterrupt):
            if _identity(item.output) not in (None, before):
                # Stopped after the (atomic) save, while stylize was finishing up: the output is
                # complete and a re-run skips it, so it counts as done.
                yield ItemResult(item, "done", time.perf_counter() - started, details={"precision": None})
                raise Interrupted(f"interrupted just after writing {item.output}; run the same command "
                                  "again to resume") from None
            raise Interrupted(f"interrupted during {item.content} with style {item.style}; its output was "
                              "not written; run the same command again to resume") from None
        yield result


def _identity(path: Path) -> tuple[int, int] | None:
    """What tells a freshly written file from the one before it: an atomic write makes a new inode."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns
