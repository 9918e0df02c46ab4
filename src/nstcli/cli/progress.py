"""What the `nst` command draws on the terminal: progress bars and summary lines, all on stderr.

The library reports data (step reports, item results and counts, plans); this module, used only
by cli/, turns them into text.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nstcli.api import Callback, StepReport

if TYPE_CHECKING:  # annotations only: nst apply draws no batch, and stylize.batch is 0.01 to 0.03 s to import
    from nstcli.api import ItemSummary, PlannedItem

# ---------------------------------------------------------------------------------------------
# nst batch and nst apply: the bar over items, the closing summary; nst batch --plan's listing
# ---------------------------------------------------------------------------------------------


def print_result(line: str) -> None:
    """A result (a written path, a JSON line) on stdout, on a line of its own: the bars on stderr are
    cleared first and drawn again under it, so on a terminal it does not end a bar's line and wrap."""
    import click
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stdout):
        click.echo(line)


def _redraw_interval() -> float:
    """Redraw often on a terminal, rarely into a log file (a cluster job's stderr), which would
    otherwise get a line per redraw."""
    return 0.2 if sys.stderr.isatty() else 10.0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun if number == 1 else noun + 's'}"


def _items(count: int) -> str:
    return "item" if count == 1 else "items"


class ItemProgress:
    """The bar over a job's items on stderr (nst batch, nst apply): finished of planned, with done /
    skipped / failed counts."""

    def __init__(self, command: str, total: int, unit: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=command, unit=unit, file=sys.stderr, dynamic_ncols=True,
                        position=0, mininterval=_redraw_interval())

    def update(self, summary: ItemSummary) -> None:
        # A dict, not keywords: tqdm sorts keyword postfixes, and done/skipped/failed reads better.
        self.bar.set_postfix({"done": summary.done, "skipped": summary.skipped, "failed": len(summary.failed)},
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def summary_lines(command: str, summary: ItemSummary, unit: str) -> list[str]:
    """A job's closing lines: counts (and what was not run), then one line per failed item."""
    where = f" in shard {summary.shard[0]}/{summary.shard[1]}" if summary.shard else ""
    head = (f"{command}: {summary.done} done, {summary.skipped} skipped, {len(summary.failed)} failed "
            f"of {_count(summary.planned, unit)}{where}")
    if summary.finished < summary.planned:
        head += f", {summary.planned - summary.finished} not run"
    return [head] + [f"failed: {r.item.label}: {r.error}" for r in summary.failed]


def failure(summary: ItemSummary, unit: str) -> str:
    """The error a job with failed items ends with (exit 1)."""
    return (f"{len(summary.failed)} of {_count(summary.planned, unit)} failed (listed above); fix or remove "
            "those files and run the same command again: finished outputs are skipped")


def run_items(command: str, results, summary: ItemSummary, unit: str, *, bar: bool, as_json: bool,
              counts: bool = True) -> None:
    """Render a job's results as they come: the bar, each result on stdout (its path, or a JSON line),
    the closing lines on stderr (also on Ctrl-C: what was finished before the error line), and the
    error a job with failed items ends with. Without `counts` (a single item) the lines are said only
    when it failed, and the error is its own."""
    import click

    from nstcli.api import RunError

    progress = ItemProgress(command, summary.planned, unit) if bar else None
    try:
        for result in results:
            summary.add(result)
            if progress:
                progress.update(summary)
            if as_json:
                print_result(json.dumps(result.summary()))
            elif result.status == "done":
                print_result(str(result.item.output))
    finally:
        if progress:
            progress.close()
        if counts or summary.failed:
            for line in summary_lines(command, summary, unit):
                click.echo(line, err=True)
    if summary.failed:
        raise RunError(failure(summary, unit) if counts else summary.failed[0].error)


def plan_line(planned: PlannedItem) -> str:
    """One item of `nst batch --plan`: status, shard, output, content and style, two spaces apart."""
    shard = f"{planned.shard}/{planned.shards}" if planned.shards else "-"
    status = "done" if planned.done else "todo"
    return f"{status}  {shard}  {planned.item.output}  {planned.item.content}  {planned.item.style}"


def plan_summary(plan: Sequence[PlannedItem], shard: tuple[int | None, int] | None) -> str:
    """Done and to do over the listed items, then per shard, so a re-submission can name its tasks."""
    done = sum(planned.done for planned in plan)
    where = f" in shard {shard[0]}/{shard[1]}" if shard and shard[0] is not None else ""
    line = f"plan: {done} done, {len(plan) - done} to do of {len(plan)} {_items(len(plan))}{where}"
    if shard is None or shard[0] is not None:  # one shard listed: the head line says it all
        return line
    count = shard[1]
    done_in = Counter(planned.shard for planned in plan if planned.done)
    todo_in = Counter(planned.shard for planned in plan if not planned.done)
    parts = [f"shard {k}/{count}: {done_in[k]} done, {todo_in[k]} to do" for k in range(1, count + 1)]
    left = [str(k) for k in range(1, count + 1) if todo_in[k]]
    parts.append(f"shards with work left: {','.join(left) if left else 'none'}")
    return "; ".join([line, *parts])


class _OneBar(Callback):
    """A watcher that draws one tqdm bar at a time: opened by its first report, closed at its end."""

    bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------------------------
# A first run's weights download (and nst weights fetch): the bar over bytes
# ---------------------------------------------------------------------------------------------


class DownloadBar(_OneBar):
    """A tqdm bar on stderr while the VGG19 weights arrive (548 MB on a first run without them),
    cleared when the download ends. Opened by the first report, so a download that fails to start
    draws nothing before its error."""

    def __init__(self):
        self.bar = None
        self.received = 0

    def on_download(self, received: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="VGG19 weights", leave=False)
            self.received = 0
        self.bar.update(received - self.received)
        self.received = received

    def on_download_end(self) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# nst stylize / reconstruct, and each image of a batch: the bar over steps
# ---------------------------------------------------------------------------------------------


class ProgressBar(_OneBar):
    """A tqdm bar on stderr: step / total, the scale, and every term the run has in the postfix.

    Under coarse-to-fine a step at 384 px costs four times one at 192 px, so a bar that counted
    steps would promise the end twice too early. The bar advances by work instead: each step by
    its scale's pixel count relative to the largest scale's, given the schedule (`on_schedule`).
    The bar is drawn at the first step, so nothing appears while the network loads (or fails to).
    """

    def __init__(self, description: str = "stylize", position: int | None = None, leave: bool = True):
        self.description = description
        self.position = position
        self.leave = leave
        self.bar = None
        self.total_steps = 0
        self.initial = 0  # steps done by an earlier run that this one resumes (nst train)
        self.schedule: list[tuple[int, tuple[int, int]]] = []

    def on_schedule(self, schedule: list[tuple[int, tuple[int, int]]]) -> None:
        self.schedule = list(schedule)

    def on_item(self, name: str) -> None:
        """In a batch, each image's bar is named after its output."""
        self.description = name

    def on_start(self, total_steps: int) -> None:
        self.total_steps = total_steps

    def on_resume(self, step: int) -> None:
        """A resumed run (nst train) starts at `step`: the bar starts there too."""
        self.initial = step

    def _cost(self, size: tuple[int, int]) -> float:
        largest = max((h * w for _, (h, w) in self.schedule), default=0)
        return (size[0] * size[1]) / largest if largest else 1.0

    def _open(self, precision: str = "fp32") -> None:
        from tqdm import tqdm

        work = sum(steps * self._cost(size) for steps, size in self.schedule) or self.total_steps
        # The rate counts steps of the largest scale per second (exact for a single scale).
        # fp32 goes unsaid; another precision is part of what the run is, so the bar names it.
        description = self.description if precision == "fp32" else f"{self.description} ({precision})"
        self.bar = tqdm(total=work, initial=self.initial, desc=description, file=sys.stderr,
                        dynamic_ncols=True, position=self.position, leave=self.leave, mininterval=_redraw_interval(),
                        unit="step",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}, {rate_fmt}]{postfix}")

    def on_step(self, report: StepReport) -> None:
        if self.bar is None:
            self._open(report.precision)
        postfix = f"step {report.step}/{report.total}"
        if len({size for _, size in self.schedule}) > 1:  # coarse-to-fine (not reconstruct's figure)
            height, width = report.size
            postfix += f" · scale {report.scale + 1}/{len(self.schedule)} {width}x{height}"
        if report.tiles:  # tiling/run.py: the scale runs tile by tile, always with Adam
            postfix += f" · {report.tiles} tiles, Adam"
        terms = ", ".join(f"{name}={value:.3g}" for name, value in report.terms.items())
        self.bar.set_postfix_str(f"{postfix} · {terms}" if terms else postfix, refresh=False)
        self.bar.update(self._cost(report.size) if self.schedule else 1)

    def on_scale_end(self, scale: int, ran: int, given: int, stopped: str) -> None:
        # A scale that stopped on a plateau leaves its unrun steps' work on the bar: count it as done,
        # so the bar still reaches the end and its estimate of the time left stays honest.
        if self.bar is not None and ran < given and scale < len(self.schedule):
            self.bar.update((given - ran) * self._cost(self.schedule[scale][1]))

    def on_end(self) -> None:
        self.close()


class FrameProgressBar(_OneBar):
    """`nst video`'s bar on stderr: frame i / n, seconds per frame and the time left (tqdm's rate and ETA).

    Frames kept from an earlier run count as done from the start. The postfix shows the step
    reached within the current frame (the first frame's full optimisation takes many times a later
    one's) and the latest frame's temporal error. Besides the engine's step reports it takes the
    video loop's (nstcli.video.reports.VideoCallback's methods).
    """

    def __init__(self, description: str = "video"):
        self.description = description
        self.bar = None
        self.latest = ""
        self.named_precision = False

    def on_video_start(self, total_frames: int, finished: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total_frames, initial=finished, desc=self.description, unit="frame",
                        file=sys.stderr, dynamic_ncols=True, mininterval=_redraw_interval())

    def on_step(self, report: StepReport) -> None:
        if self.bar is not None and report.precision != "fp32" and not self.named_precision:
            # Known only once the first frame's run has its network: named from then on.
            self.bar.set_description_str(f"{self.description} ({report.precision})", refresh=False)
            self.named_precision = True
        if self.bar is not None:
            self.bar.set_postfix_str(f"step {report.step}/{report.total}{self.latest}", refresh=False)

    def on_frame(self, report) -> None:
        if self.bar is None:
            return
        if report.temporal_error is not None:
            self.latest = f" · temporal error {report.temporal_error:.3g}"
        self.bar.set_postfix_str(f"{report.seconds:.1f} s/frame{self.latest}", refresh=False)
        self.bar.update(1)

    def on_encode(self, output) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"encoding {output}")

    def on_video_end(self) -> None:
        self.close()
