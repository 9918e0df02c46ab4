"""Candidate default settings: what each costs and how low it gets the loss, at the default size.

    python benchmarks/decisions/defaults.py [--candidates "300;200;150@192;200@192"] [--size 384] [--cli]

A candidate is `STEPS` (one scale at the default size) or `STEPS@START` (coarse-to-fine from
START px to the default size, STEPS per scale). Every candidate optimises the default objective on
the bundled examples with an untrained seeded VGG19 (the cost of a step and the shape of the loss
curve, not the picture, are what is compared). The table gives, as ratios measured in one run:

- final loss: the lowest full-size loss the run reached (what the returned image has), relative to
  the first candidate's;
- time: total wall time of the run, relative to the first candidate's;
- time to the first candidate's final loss: when the candidate first got at least that low.

--cli then times the command people run with the defaults, end to end in a fresh process:
`nst stylize examples/content.jpg examples/style.jpg -o OUT --weights random`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common
from nstcli import api
from nstcli.config.fields import Config
from convergence import Clock


def parse(candidate: str, base: Config) -> Config:
    steps, _, start = candidate.partition("@")
    return base.replace(steps=int(steps), start_size=int(start) if start else None)


def run(config: Config) -> tuple[list[tuple[float, float]], float]:
    """(seconds, loss) of the full-size steps, and the run's total seconds."""
    clock = Clock()
    started = time.perf_counter()
    result = api.stylize(common.CONTENT, common.STYLE, None, config=config, callbacks=[clock])
    total = time.perf_counter() - started
    final = tuple(result.image.shape[-2:])
    return [(t, loss) for _, size, t, loss in clock.rows if tuple(size) == final], total


def time_cli() -> float:
    with tempfile.TemporaryDirectory(prefix="nst-defaults-") as folder:
        out = os.path.join(folder, "out.png")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nstcli", "stylize", str(common.CONTENT), str(common.STYLE),
                        "-o", out, "--weights", "random"], check=True, stderr=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default="300;200;150@192;200@192",
                        help="';'-separated STEPS or STEPS@START_SIZE; the first is the reference")
    parser.add_argument("--size", type=int, default=Config().size, help="longest side (default: the default)")
    parser.add_argument("--cli", action="store_true", help="also time the default command end to end")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(common.machine())
    base = Config(weights="random", size=args.size, checkpoint_every=0)
    candidates = args.candidates.split(";")
    api.load_network(base)  # build the network before any clock starts
    results = {name: run(parse(name, base)) for name in candidates}
    reference_points, reference_total = results[candidates[0]]
    reference_loss = min(loss for _, loss in reference_points)
    rows = []
    for name, (points, total) in results.items():
        final = min(loss for _, loss in points)
        reached = next((t for t, loss in points if loss <= reference_loss), None)
        rows.append([name, f"{final:.4g}", final / reference_loss, total / reference_total,
                     "not reached" if reached is None else reached / reference_total])
    print(f"default size {base.size} px; reference: {candidates[0]}, {reference_total:.0f} s\n")
    print(common.table(["candidate (steps[@start px])", "final loss", "final loss / ref",
                        "time / ref", "time to ref's final loss / ref"], rows))
    if args.cli:
        seconds = time_cli()
        print(f"\n`nst stylize examples/content.jpg examples/style.jpg -o OUT --weights random`: "
              f"{seconds:.0f} s wall, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
