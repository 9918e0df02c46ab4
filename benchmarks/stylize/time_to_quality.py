"""Wall time to reach the loss the report's loop reaches after 1000 steps, nstcli against the report.

1. The report's loop (benchmarks/common.py: torchvision VGG19 features[:29], weights not frozen,
   everything recomputed each step, Adam lr 0.01, from the content image) runs 1000 steps; the
   target is the report's loss of its final image.
2. nstcli runs through `nstcli.api.stylize` with a callback that evaluates the *report's* loss on
   nstcli's current image every few steps (the clock is paused while it does), and the run stops
   as soon as that loss is at or below the target. nstcli optimises its own objective, so:
   - "defaults": no settings but the size and --weights random (L-BFGS, content relu4_2, style
     relu1_1..relu5_1, style_weight 1e3). A different objective: it need not ever reach the target.
   - "report's objective, L-BFGS": nstcli's weighting set to reproduce the report's loss exactly
     (as configs/seed.yaml does, at this size; see the `report_objective` function), optimised
     with nstcli's default L-BFGS.
   - "report's objective, Adam": the same with the report's optimiser (Adam, lr 0.01): it should
     need about as many steps as the report, so its time ratio is nstcli's per-step speed-up alone.
3. Times are ratios to the report loop's 1000 steps, measured in one run. Because the machine is
   shared, the runs are sequential and minutes long, so the script also times single steps of the
   report and of nstcli interleaved, and gives the ratio those imply (steps needed x step time).

Images: the bundled examples squeezed to size x size (as the report's loader did), weights random
(seed 0). The default size is 128 px: 1000 steps of the report's loop take too long at 256 px on a
busy 2-core machine.

    python benchmarks/stylize/time_to_quality.py [--size 128] [--report-steps 1000] [--max-steps 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common
from nstcli import api
from nstcli.config.fields import Config
from nstcli.reports import Callback

# What the report's loop reads, given torchvision's in-place ReLUs (see common.ReportLoss).
REPORT_LAYERS_BY_NAME = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "conv5_1")


def report_objective(size: int) -> dict:
    """nstcli settings whose objective is exactly half the report's loss at size x size.

    Per layer with M positions, the report's mean((F - P)^2) is 2 L_c in nstcli's terms and its
    mean((F F^T - S S^T)^2) is 4 M^2 E_l (README, "Losses"). So report = 2 * (sum L_c + 0.02 *
    sum M_l^2 E_l): content_weight 1, style_weight 0.02, style_layer_weights M_l^2.
    """
    positions = [(size // 2**k) ** 2 for k in range(5)]  # conv1_x full size, halved by each pool
    return {
        "content_layers": REPORT_LAYERS_BY_NAME,
        "style_layers": REPORT_LAYERS_BY_NAME,
        "content_weight": 1.0,
        "style_weight": 0.02,
        "style_layer_weights": tuple(float(m * m) for m in positions),
    }


class Reached(Exception):
    pass


class QualityWatch(Callback):
    """Every `every` steps: the report's loss of the current image; stop once it is <= target."""

    def __init__(self, evaluate, target: float, every: int):
        self.evaluate, self.target, self.every = evaluate, target, every
        self.started = 0.0
        self.paused = 0.0  # seconds spent evaluating, not charged to nstcli
        self.reached: tuple[int, float, float] | None = None  # step, seconds, loss
        self.best = float("inf")
        self.steps = 0

    def on_step(self, report) -> None:
        self.steps = report.step
        if report.step % self.every:
            return
        now = time.perf_counter()
        elapsed = now - self.started - self.paused  # nstcli's time up to this step
        loss = self.evaluate(report.image)
        self.paused += time.perf_counter() - now
        self.best = min(self.best, loss)
        if loss <= self.target:
            self.reached = (report.step, elapsed, loss)
            raise Reached


def run_tool(paths, size, max_steps, every, evaluate, target, **settings) -> QualityWatch:
    # One scale: the report's loss is defined at size x size (at 192 px and below, the default
    # start_size is a single scale anyway).
    config = Config(weights="random", size=size, steps=max_steps, start_size=None,
                    checkpoint_every=0, **settings)
    watch = QualityWatch(evaluate, target, every)
    watch.started = time.perf_counter()
    try:
        api.stylize(paths[0], paths[1], None, config=config, callbacks=[watch])
    except Reached:
        pass
    return watch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--report-steps", type=int, default=1000)
    parser.add_argument("--max-steps", type=int, default=1000, help="give up on a nstcli run after this")
    parser.add_argument("--every", type=int, default=5, help="evaluate the report's loss every N steps")
    parser.add_argument("--skip-adam", action="store_true", help="skip the (long) nstcli Adam run")
    args = parser.parse_args()
    common.begin()
    size = args.size
    state = common.random_weights()
    content, style = common.example_images(size)
    folder = tempfile.TemporaryDirectory(prefix="nst-ttq-")
    paths = common.write_examples(size, folder.name)

    report = common.ReportLoop(state, content, style)
    evaluate = common.ReportLossOf(report.loss, content, style)
    start = time.perf_counter()
    for step in range(1, args.report_steps + 1):
        report.step()
        if step % 100 == 0:
            print(f"  report step {step}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    report_seconds = time.perf_counter() - start
    target = evaluate(report.generated.detach())
    initial = evaluate(content)

    # Sanity check of report_objective(): nstcli's objective there should be exactly half the report's.
    from nstcli.image.io import prepare
    from common import standard_terms
    from nstcli.terms.settings import LossSettings
    from nstcli.terms.base import evaluate as sum_terms

    seed_like = Config(weights="random", size=size, **report_objective(size))
    network = api.load_network(seed_like, torch.device("cpu"))
    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(1))
    cpu = torch.device("cpu")
    terms = standard_terms(seed_like.replace(content_weight=1.0, style_weight=0.02).pick(LossSettings), network,
                           prepare(content, cpu), [prepare(style, cpu)])
    with torch.no_grad():
        ratio = evaluate(noise) / float(sum_terms(terms, network(noise), noise)[0])
    print(f"report's loss / nstcli's report-objective loss on a noise image: {ratio:.4f} (2 if equal)")

    runs = {
        "defaults (L-BFGS)": {},
        "report's objective, L-BFGS": report_objective(size),
    }
    if not args.skip_adam:
        runs["report's objective, Adam lr 0.01"] = {**report_objective(size), "optimizer": "adam",
                                                    "lr": common.REPORT_LR}
    watches = {}
    for name, settings in runs.items():
        watches[name] = run_tool(paths, size, args.max_steps, args.every, evaluate, target, **settings)
        print(f"  {name}: done", file=sys.stderr, flush=True)

    # Step times interleaved, so the ratios below share the same background load.
    loop = common.ReportLoop(state, content, style)
    tools = {name: common.ToolRun(size, 2, **settings) for name, settings in runs.items()}
    times = {name: [] for name in ["report", *tools]}
    loop.step()
    for tool in tools.values():
        tool.run()
    for _ in range(3):
        times["report"] += common.timed(loop.step, 2)
        for name, tool in tools.items():
            times[name] += tool.run()
    report_step = common.median(times["report"])

    print(f"\n{size} x {size} px. Report's loss: {initial:.4g} at the content image, "
          f"target {target:.4g} after {args.report_steps} report steps in {report_seconds:.0f} s "
          f"({report_seconds / args.report_steps:.3g} s/step).\n")
    rows = [["report's loop (Adam)", args.report_steps, report_seconds, 1.0, 1.0, target]]
    for name, watch in watches.items():
        if watch.reached:
            step, seconds, loss = watch.reached
            implied = step * common.median(times[name]) / (args.report_steps * report_step)
            rows.append([f"nstcli {name}", step, seconds, seconds / report_seconds, implied, loss])
        else:
            rows.append([f"nstcli {name}", f"not within {watch.steps}", "-", "-", "-",
                         f"best {watch.best:.4g}"])
    print(common.table(["run", "steps to target", "seconds", "time / report's",
                        "same, from interleaved step times", "report's loss reached"], rows))
    print("\nstep times (s), interleaved: " + ", ".join(
        f"{name} {common.median(values):.3g}" for name, values in times.items()))


if __name__ == "__main__":
    main()
