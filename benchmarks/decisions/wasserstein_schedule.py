"""The wasserstein recipe's objective: the cheapest schedule that reaches its own schedule's final loss.

    python benchmarks/decisions/wasserstein_schedule.py [--size 256] [--candidates ...] [--max-steps 400]

The reference is configs/wasserstein.yaml as it stands (Adam lr 0.02, betas 0.9/0.99, iterate
averaging 0.99, scales growing by sqrt(2) up to --size from 128 px, 1000 steps at the first scale
and 500 at each later one), on the bundled examples, untrained seeded VGG19. Its final loss is the
recipe's objective at --size of the image it returns (the average). Every candidate optimises the
same objective; the table gives, as ratios to the reference's wall time measured in the same run,
the time at which the candidate's image first reached that loss.

A candidate is `OPTIMISER:STEPS[@START]`: `lbfgs:400` is L-BFGS at --size alone for up to 400
steps; `lbfgs:100/400@128` runs the recipe's sqrt(2) scales from 128 px with 100 steps at the
first scale and up to 400 at every later one; `lbfgs:50/400@128x2` grows the scales by 2 instead
(128 px, then --size); `adam:500/250` is the recipe with those steps (first / later scales). L-BFGS runs stop as soon as
their loss at --size is at or below the target (their image is the lowest-loss one, so its loss
is the reported one); Adam runs average their iterates, so their image's loss is measured once, at
the end, and they count as reaching the target only then.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common  # first: it sets up OpenMP before torch loads (as `nst` does)

import torch

from nstcli.stylize.sizes import scale_sizes  # noqa: E402
from nstcli import api
from nstcli.network.load import layers_needed, min_side
from nstcli.config.fields import load_config
from nstcli.reports import Callback
from nstcli.errors import Interrupted
from nstcli.image.io import open_image, pil_to_tensor, prepare, resize_longest
from nstcli.stylize.styles import PreparedStyle
from nstcli.terms.base import evaluate
from nstcli.terms.builder import build_objective
from nstcli.terms.settings import LossSettings

RECIPE = common.ROOT / "configs" / "wasserstein.yaml"
DEFAULT_CANDIDATES = "lbfgs:400;lbfgs:100/400@128;lbfgs:50/400@128x2;adam:500/250"


class LossAt:
    """The recipe's objective at the final size, with the targets `api.stylize` builds there."""

    def __init__(self, config):
        device = torch.device("cpu")
        self.network = api.load_network(config, device)
        need = min_side(layers_needed(config))
        content = prepare(pil_to_tensor(resize_longest(open_image(common.CONTENT), config.size)), device)
        loss = config.pick(LossSettings)
        styles = PreparedStyle(common.STYLE).at(loss, self.network, round(config.size * config.style_scale), need,
                                                device)
        _, self.terms = build_objective(loss, self.network, content, styles)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> float:
        image = prepare(image, torch.device("cpu"))
        total, _ = evaluate(self.terms, self.network(image), image)
        return float(total)


class StopAtTarget(Callback):
    """Wall time of every step at the final size; stops the run once its loss is at the target."""

    def __init__(self, final_shape, target: float | None, started: float):
        self.final_shape, self.target, self.started = tuple(final_shape), target, started
        self.reached = self.loss = None

    def on_step(self, report) -> None:
        if tuple(report.size) != self.final_shape or self.target is None:
            return
        if report.loss <= self.target and self.reached is None:
            self.reached, self.loss = time.perf_counter() - self.started, report.loss
            raise KeyboardInterrupt  # the engine turns this into a clean stop


def candidate_config(spec: str, base):
    optimiser, _, rest = spec.partition(":")
    steps, _, start = rest.partition("@")
    first, _, later = steps.partition("/")
    changes = {"optimizer": optimiser}
    if optimiser == "lbfgs":
        changes.update(lr=None, average=0.0)
    if not later:  # one scale
        changes.update(steps=int(first), first_steps=None, start_size=None)
    else:
        changes.update(first_steps=int(first), steps=int(later))
        if start:
            size, _, factor = start.partition("x")
            changes.update(start_size=int(size), scale_factor=float(factor) if factor else base.scale_factor)
    return base.replace(**changes)


def run(config, loss_at: LossAt, target: float | None):
    """(seconds to the target or None, total seconds, loss of the returned image)."""
    final_shape = resize_longest(open_image(common.CONTENT), config.size).size[::-1]
    started = time.perf_counter()
    watcher = StopAtTarget(final_shape, target, started)
    try:
        result = api.stylize(common.CONTENT, common.STYLE, None, config=config, callbacks=[watcher])
        image = result.image
    except Interrupted:
        return watcher.reached, watcher.reached, watcher.loss
    total = time.perf_counter() - started
    loss = loss_at(image)
    reached = total if target is not None and loss <= target else None
    return reached, total, loss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--candidates", default=DEFAULT_CANDIDATES, help="';'-separated, see above")
    parser.add_argument("--reference-steps", default=None,
                        help="FIRST/LATER steps of the reference (default: the recipe's 1000/500)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(common.machine(), file=sys.stderr)
    base = load_config(RECIPE).replace(weights="random", size=args.size, checkpoint_every=0)
    reference = base
    if args.reference_steps:
        first, _, later = args.reference_steps.partition("/")
        reference = base.replace(first_steps=int(first), steps=int(later or first))
    loss_at = LossAt(base)  # also builds the network before any clock starts

    _, reference_total, target = run(reference, loss_at, None)
    rows = [[f"recipe: adam {reference.first_steps}/{reference.steps}, scales {scale_sizes(reference)}",
             f"{target:.4g}", 1.0, 1.0]]
    for spec in args.candidates.split(";"):
        config = candidate_config(spec, base)
        reached, total, loss = run(config, loss_at, target)
        rows.append([f"{spec}, scales {scale_sizes(config)}", f"{loss:.4g}",
                     "not reached" if reached is None else reached / reference_total, total / reference_total])
    print(f"wasserstein recipe at {args.size} px; reference {reference_total:.0f} s, final loss {target:.4g}\n")
    print(common.table(["schedule", "final loss", "time to the recipe's loss / recipe",
                        "time run / recipe"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
