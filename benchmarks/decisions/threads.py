"""How many threads, and how idle OpenMP threads should wait: seconds per step under each setting.

torch's CPU kernels run on OpenMP threads (one per core by default). Between parallel regions the
threads of GNU OpenMP spin, waiting for work; when other processes compete for the cores, a spinning
thread burns the time slice its partner needs, and every region waits for the slowest thread.
This script measures, in fresh processes (the wait policy is read once, when torch loads), one
nstcli step (the real engine, default config, --weights random) and the floor under:

- torch's defaults (one thread per core, spinning waits);
- OMP_WAIT_POLICY=PASSIVE (idle threads sleep), which `nst` sets unless the variable is already set;
- one thread.

Settings alternate run by run so that load from other processes hits them alike.

    python benchmarks/decisions/threads.py [--sizes 128,256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]  # where common.py is

SETTINGS = {
    "default (spin)": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None},
    "1 thread": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1"},
}

CHILD = """
import json, sys, warnings
sys.path.insert(0, {here!r})
warnings.simplefilter("ignore")
import torch  # first: OpenMP reads this process's environment as given, before common sets defaults
import common
size, steps = {size}, {steps}
state = common.random_weights()
content, style = common.example_images(size)
from nstcli.network.load import layers_needed
from nstcli.config.fields import Config
floor = common.Floor(state, layers_needed(Config()), content)
floor.step()
floor_times = common.timed(floor.step, steps)
tool = common.ToolRun(size, steps)
tool.run()
tool_times = tool.run()
print(json.dumps({{"threads": torch.get_num_threads(), "floor": common.median(floor_times),
                  "nstcli": common.median(tool_times)}}))
"""


def child(size: int, steps: int, setting: dict) -> dict:
    env = dict(os.environ)
    for key, value in setting.items():
        env.pop(key, None)
        if value is not None:
            env[key] = value
    out = subprocess.run([sys.executable, "-c", CHILD.format(here=str(BENCHMARKS), size=size, steps=steps)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCHMARKS))
    import common

    print(common.machine())
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
        for _ in range(args.rounds):
            for name, setting in SETTINGS.items():
                results[name].append(child(size, args.steps, setting))
        base = common.median([r["nstcli"] for r in results["default (spin)"]])
        for name, runs in results.items():
            floor = common.median([r["floor"] for r in runs])
            tool = common.median([r["nstcli"] for r in runs])
            rows.append([size, name, runs[0]["threads"], floor, tool, base / tool])
        print(f"  {size} px done", file=sys.stderr, flush=True)
    print(common.table(["px", "setting", "threads", "floor s", "nstcli s", "speed-up vs default"], rows))


if __name__ == "__main__":
    main()
