"""Peak resident memory of a stylize run at several sizes (ru_maxrss of a fresh child process).

Each size runs `nstcli.api.stylize` on the bundled examples (content 3:2, so 1024 px is 1024 x 683)
with the default config, --weights random and a few steps, in its own process, which then reports
its peak resident set size. A baseline process only imports torch and nstcli and loads the network.

A few steps do not fill L-BFGS's history: each of its 100 pairs holds two copies of the image
(3 x H x W floats each), which a long run adds on top (the column "+ full history"). The last row
checks that estimate: a run long enough to fill the history, measured.

    python benchmarks/stylize/memory.py [--sizes 512,1024,2048] [--steps 3] [--check-size 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common

BENCHMARKS = Path(__file__).resolve().parents[1]  # where common.py is
HISTORY = 100  # pairs, as nstcli.optim.engine.make_optimizer sets

CHILD = """
import json, resource, sys, warnings
sys.path.insert(0, {here!r})
warnings.simplefilter("ignore")
import common
from nstcli import api
from nstcli.config.fields import Config
# One scale: the peak belongs to the full-size steps, and coarse scales would only add time.
config = Config(weights="random", size={size}, steps={steps}, start_size=None, checkpoint_every=0)
if {steps}:
    result = api.stylize(common.CONTENT, common.STYLE, None, config=config)
    shape = list(result.image.shape)
else:
    import torch
    api.load_network(config, torch.device("cpu"))
    shape = [0, 0, 0, 0]
print(json.dumps({{"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "shape": shape}}))
"""


def child(size: int, steps: int) -> dict:
    code = CHILD.format(here=str(BENCHMARKS), size=size, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def history_bytes(shape, pairs=HISTORY) -> int:
    _, channels, height, width = shape
    return 2 * pairs * channels * height * width * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--check-size", type=int, default=256,
                        help="size of the run that fills the L-BFGS history (0: skip)")
    args = parser.parse_args()
    print(common.machine())
    gb = 1024**3
    base = child(64, 0)
    rows = [["baseline: torch + nstcli + network", "-", "-", base["maxrss_kb"] * 1024 / gb, "-", "-"]]
    for size in (int(s) for s in args.sizes.split(",")):
        run = child(size, args.steps)
        peak = run["maxrss_kb"] * 1024 / gb
        extra = history_bytes(run["shape"]) / gb
        rows.append([f"{size} px", f"{run['shape'][3]} x {run['shape'][2]}", args.steps, peak, extra,
                     peak + extra])
        print(f"  {size} px done", file=sys.stderr, flush=True)
    if args.check_size:
        short = child(args.check_size, args.steps)
        long_steps = HISTORY + 20
        full = child(args.check_size, long_steps)
        predicted = short["maxrss_kb"] * 1024 / gb + history_bytes(short["shape"]) / gb
        rows.append([f"check: {args.check_size} px", f"{full['shape'][3]} x {full['shape'][2]}",
                     long_steps, full["maxrss_kb"] * 1024 / gb, "measured",
                     f"predicted {predicted:.3g}"])
    print(common.table(["run", "image", "steps", "peak RSS GiB", "+ full history GiB",
                        "peak with full history GiB"], rows))


if __name__ == "__main__":
    main()
