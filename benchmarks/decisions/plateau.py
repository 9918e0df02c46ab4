"""When should a scale stop? The plateau rule's window and tolerance, from one full run's loss curve.

    python benchmarks/decisions/plateau.py CONTENT STYLE [--size 512] [--start-size 192] [--steps 150]
        [--windows 10,20,30] [--tolerances 0.01,0.02,0.03,0.05] [--curve FILE]

Runs `api.stylize` on the original VGG19 with the plateau rule off (every scale its full `steps`),
records the loss after every step, and then replays the rule (optim/stopping.py) on that curve for
each window and tolerance: at which step each scale would have stopped, the work that leaves (steps
weighted by each scale's pixel count relative to the output's, over the full run's) and how far
above the full run's lowest loss each scale's stopping point is. `--curve FILE` keeps the recorded
curve as JSON (or reads it back instead of running, when FILE exists).

The replay cannot show the picture: a rule that looks cheap here must still be looked at, as in
benchmarks/README.md, "Time to the picture".
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import groupby
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
from common import machine, table
from nstcli import api
from nstcli.optim.stopping import Plateau
from nstcli.reports import Callback


class Curve(Callback):
    def __init__(self):
        self.rows: list[list] = []

    def on_step(self, report) -> None:
        self.rows.append([report.scale, report.size[0], report.size[1], report.loss])


def record(content: str, style: str, size: int, start: int, steps: int) -> list[list]:
    config = api.Config(size=size, start_size=start, steps=steps, taper_from=None, stop_tolerance=0.0,
                        checkpoint_every=0)
    curve = Curve()
    api.stylize(content, style, None, config, callbacks=[curve])
    return curve.rows


def lowest_curve(losses: list[float]) -> list[float]:
    best, out = float("inf"), []
    for loss in losses:
        best = min(best, loss)
        out.append(best)
    return out


def stop_step(lowest: list[float], rule: Plateau) -> int:
    for ran in range(1, len(lowest) + 1):
        if rule.reached(lowest[:ran]):
            return ran
    return len(lowest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--start-size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--windows", default="10,20,30")
    parser.add_argument("--tolerances", default="0.01,0.02,0.03,0.05")
    parser.add_argument("--curve", type=Path, default=None)
    args = parser.parse_args()
    if args.curve is not None and args.curve.exists():
        rows = json.loads(args.curve.read_text())
    else:
        print(machine())
        rows = record(args.content, args.style, args.size, args.start_size, args.steps)
        if args.curve is not None:
            args.curve.write_text(json.dumps(rows))
    scales = [list(group) for _, group in groupby(rows, key=lambda row: row[0])]
    largest = max(h * w for _, h, w, _ in rows)
    costs = [scale[0][1] * scale[0][2] / largest for scale in scales]
    curves = [lowest_curve([row[3] for row in scale]) for scale in scales]
    full_work = sum(len(curve) * cost for curve, cost in zip(curves, costs))
    out = []
    for window in map(int, args.windows.split(",")):
        for tolerance in map(float, args.tolerances.split(",")):
            rule = Plateau(window, tolerance)
            stops = [stop_step(curve, rule) for curve in curves]
            work = sum(stop * cost for stop, cost in zip(stops, costs)) / full_work
            above = [curve[stop - 1] / curve[-1] - 1 for curve, stop in zip(curves, stops)]
            out.append([window, tolerance, " ".join(map(str, stops)), f"{work:.2f}",
                        " ".join(f"{100 * a:+.1f}%" for a in above)])
    sizes = " ".join(f"{scale[0][2]}x{scale[0][1]}" for scale in scales)
    print(f"scales {sizes}; each scale's lowest loss after its full run: "
          + " ".join(f"{curve[-1]:.4f}" for curve in curves))
    print(table(["window", "tolerance", "stops at (per scale)", "work / full run", "loss above the full scale's"],
                out))


if __name__ == "__main__":
    main()
