"""Seconds per optimisation step: nstcli against the hardware floor and against the report's loop.

Variants, measured interleaved (one repetition of each in turn, so background load hits them alike)
and summarised by their medians:

- floor:      frozen, truncated, channels_last VGG19 forward + backward to the input, loss = sum of
              the outputs (nothing but the network);
- floor NCHW: the same in the default memory layout (shows what channels_last buys on this machine);
- nstcli:     `nstcli.api.stylize` with the default config (L-BFGS, relu4_2 / relu1_1..relu5_1),
              `--weights random`, timed by a callback from one step's report to the next, so the
              first step of every run (warm-up) is excluded and everything the loop does is included;
- floor bf16 and nstcli bf16: the same two in bf16 (`--precision bf16`), each against its own floor:
              where the CPU has no native bf16 (AVX2 only) both are emulated and far slower than fp32;
- report:     the report's loop re-implemented plainly (torchvision VGG19 features[:29], weights not
              frozen, content and style features recomputed every step, Adam lr 0.01).

All variants get the bundled examples squeezed to size x size, as the report's loader did.

    python benchmarks/stylize/step_cost.py [--sizes 128,256,512] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common
from nstcli.network.load import layers_needed
from nstcli.config.fields import Config


def measure(size: int, repeats: int, steps: int) -> dict[str, float]:
    state = common.random_weights()
    content, style = common.example_images(size)
    layers = layers_needed(Config())
    floor = common.Floor(state, layers, content, channels_last=True)
    floor_nchw = common.Floor(state, layers, content, channels_last=False)
    floor_bf16 = common.Floor(state, layers, content, channels_last=True, precision="bf16")
    report = common.ReportLoop(state, content, style)
    tool = common.ToolRun(size, steps)
    tool_bf16 = common.ToolRun(size, steps, precision="bf16")
    variants = {
        "floor": lambda: common.timed(floor.step, steps),
        "floor NCHW": lambda: common.timed(floor_nchw.step, steps),
        "nstcli": tool.run,
        "floor bf16": lambda: common.timed(floor_bf16.step, steps),
        "nstcli bf16": tool_bf16.run,
        "report": lambda: common.timed(report.step, steps),
    }
    return common.interleaved(variants, repeats)


def main() -> None:
    args = common.timing_arguments(__doc__.splitlines()[0], "128,256,512", repeats=3, steps=2).parse_args()
    common.begin()
    rows = []
    for size in args.sizes:
        t = measure(size, args.repeats, args.steps)
        rows.append([size, t["floor"], t["floor NCHW"], t["nstcli"], t["report"],
                     t["nstcli"] / t["floor"], t["floor NCHW"] / t["floor"], t["report"] / t["nstcli"],
                     t["floor bf16"], t["nstcli bf16"], t["nstcli bf16"] / t["floor bf16"]])
        print(f"  {size} px done", file=sys.stderr, flush=True)
    print(common.table(
        ["px", "floor s", "floor NCHW s", "nstcli s", "report s", "nstcli/floor", "NCHW/NHWC",
         "report/nstcli", "floor bf16 s", "nstcli bf16 s", "bf16 nstcli/floor"], rows))


if __name__ == "__main__":
    main()
