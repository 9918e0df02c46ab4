"""Seconds per optimisation step: nstcli against the hardware floor and against the report's loop.

Variants, measured interleaved (one repetition of each in turn, so background load hits them alike)
and summarised by their medians:

- floor:      frozen, truncated, channels_last VGG19 forward + backward to the input, loss = sum of
              the outputs (nothing but the network);
- floor NCHW: the same in the default memory layout (shows what channels_last buys on this machine);
- nstcli:     `nstcli.api.stylize` with the default config (L-BFGS, relu4_2 / relu1_1..relu5_1),
              `--weights random`, timed by a callback from one step's report to the next, so the
              first step of every run (warm-up) is excluded and everything the loop does is included;
- report:     the report's loop re-implemented plainly (torchvision VGG19 features[:29], weights not
              frozen, content and style features recomputed every step, Adam lr 0.01).

All variants get the bundled examples squeezed to size x size, as the report's loader did.

    python benchmarks/step_cost.py [--sizes 128,256,512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings

import torch

import common
from nstcli import api
from nstcli.config.fields import Config
from nstcli.optim.engine import Callback


class StepTimer(Callback):
    """Seconds between consecutive step reports (the first step of a run is warm-up, not timed)."""

    def __init__(self):
        self.times: list[float] = []
        self._last = None

    def on_start(self, total_steps: int) -> None:
        self.times, self._last = [], None

    def on_step(self, report) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


class ToolRun:
    """`nstcli.api.stylize` on the bundled examples at `size`, default config, `steps` timed steps."""

    def __init__(self, size: int, steps: int, **config):
        self._folder = tempfile.TemporaryDirectory(prefix="nst-bench-")
        self.content, self.style = common.write_examples(size, self._folder.name)
        # One scale (start_size None): every timed step is a step at `size`.
        self.config = Config(**{"weights": "random", "size": size, "steps": steps + 1,
                                "start_size": None,
                                "checkpoint_every": 0, **config})
        self.timer = StepTimer()

    def run(self) -> list[float]:
        api.stylize(self.content, self.style, None, config=self.config, callbacks=[self.timer])
        return list(self.timer.times)


def measure(size: int, repeats: int, steps: int) -> dict[str, float]:
    state = common.random_weights()
    content, style = common.example_images(size)
    layers = api.layers_needed(Config())
    floor = common.Floor(state, layers, content, channels_last=True)
    floor_nchw = common.Floor(state, layers, content, channels_last=False)
    report = common.ReportLoop(state, content, style)
    tool = ToolRun(size, steps)
    variants = {
        "floor": lambda: common.timed(floor.step, steps),
        "floor NCHW": lambda: common.timed(floor_nchw.step, steps),
        "nstcli": tool.run,
        "report": lambda: common.timed(report.step, steps),
    }
    return common.interleaved(variants, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions per size")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant per repetition")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the random-weights warning, once per run
    torch.manual_seed(common.SEED)
    print(common.machine())
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        t = measure(size, args.repeats, args.steps)
        rows.append([size, t["floor"], t["floor NCHW"], t["nstcli"], t["report"],
                     t["nstcli"] / t["floor"], t["floor NCHW"] / t["floor"], t["report"] / t["nstcli"]])
        print(f"  {size} px done", file=sys.stderr, flush=True)
    print(common.table(
        ["px", "floor s", "floor NCHW s", "nstcli s", "report s", "nstcli/floor", "NCHW/NHWC",
         "report/nstcli"], rows))


if __name__ == "__main__":
    main()
