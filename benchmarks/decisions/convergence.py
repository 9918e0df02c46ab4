"""Time to reach a given loss: Adam vs L-BFGS vs coarse-to-fine, at the default size.

    python benchmarks/decisions/convergence.py [--size 384] [--steps 300] [--content examples/content.jpg] ...

Every variant optimises the same objective (the default config's, untrained seeded VGG19 — the cost
of a step does not depend on the weights' values) for `--steps` steps at full size. The target loss
is the highest final loss among the variants, so every variant reaches it; the table gives the wall
time at which each first got there, as a ratio to the fastest, measured in one run. Coarse-to-fine
is timed from its first (small) scale, but only its full-size steps count towards reaching the
target, since the coarse scales optimise smaller images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from nstcli import api
from nstcli.reports import Callback
from nstcli.config.fields import Config

ROOT = Path(__file__).resolve().parents[2]


class Clock(Callback):
    """Wall time and loss of every step at the final scale."""

    def __init__(self, final_shape=None):
        self.rows = []
        self.started = None

    def on_start(self, total_steps):
        self.started = time.perf_counter()

    def on_step(self, report):
        self.rows.append((report.scale, report.size, time.perf_counter() - self.started, report.loss))


def run(name, config, content, style):
    clock = Clock()
    result = api.stylize(content, style, config=config, callbacks=[clock])
    final = tuple(result.image.shape[-2:])
    points = [(t, loss) for _, size, t, loss in clock.rows if tuple(size) == final]
    return name, points, clock.rows[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=Config().size)
    parser.add_argument("--steps", type=int, default=300, help="full-size steps per variant")
    parser.add_argument("--content", default=str(ROOT / "examples" / "content.jpg"))
    parser.add_argument("--style", default=str(ROOT / "examples" / "style.jpg"))
    args = parser.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    base = Config(weights="random", size=args.size, steps=args.steps, start_size=None, checkpoint_every=0)
    variants = [
        ("L-BFGS", base.replace(optimizer="lbfgs")),
        ("Adam lr 0.02", base.replace(optimizer="adam")),
        ("Adam lr 0.05", base.replace(optimizer="adam", lr=0.05)),
        (f"L-BFGS coarse-to-fine from {args.size // 2}",
         base.replace(optimizer="lbfgs", start_size=args.size // 2, steps=args.steps // 2)),
    ]
    api.load_network(base)  # build the network before any clock starts
    results = [run(name, config, args.content, args.style) for name, config in variants]
    target = max(points[-1][1] for _, points, _ in results)
    reach = {}
    for name, points, _ in results:
        reach[name] = next(t for t, loss in points if loss <= target)
    best = min(reach.values())
    print(f"size {args.size} px, {args.steps} steps per variant (coarse-to-fine: {args.steps // 2} per scale), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"target loss: {target:.4g} (the highest final loss among the variants)\n")
    print("| variant | final loss | time to target (ratio to fastest) | total time (ratio) |")
    print("| --- | --- | --- | --- |")
    fastest_total = min(total for _, _, total in results)
    for name, points, total in results:
        print(f"| {name} | {points[-1][1]:.4g} | {reach[name] / best:.2f} | {total / fastest_total:.2f} |")


if __name__ == "__main__":
    main()
