"""A Gram step and a Wasserstein step of nstcli's loop against the bare network (the floor), in one precision.

    python benchmarks/decisions/step_floor.py [--sizes 256,512] [--repeats 5] [--steps 3] [--precision fp32]

Variants, measured interleaved (one repetition of each in turn, so background load hits them alike)
and summarised by their medians, all with the network in `--precision`:

- floor: the frozen, truncated, channels_last VGG19 forward + backward to the input pixels, loss =
         the sum of the outputs (nothing but the network);
- Gram:  `engine.optimize` with Adam on the default objective (content at relu4_2, Gram style at
         relu1_1..relu5_1), timed from one step report to the next: everything the loop does
         (terms, their backward, the optimiser, clamping, reporting);
- W2:    the same with `style_loss: wasserstein`.

Untrained seeded weights: the cost of a step does not depend on their values.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common  # first: it sets up OpenMP before torch loads (as `nst` does)

import torch
from nstcli.network.load import layers_needed
from nstcli.optim import engine
from nstcli.config.fields import Config
from nstcli.network.features import VGGFeatures
from nstcli.image.io import prepare
from common import standard_terms
from nstcli.terms.settings import LossSettings
from nstcli.optim.optimizers import OptimizerSettings


def measure(size: int, repeats: int, steps: int, precision: str, wasserstein: bool = True) -> dict[str, float]:
    cpu = torch.device("cpu")
    config = Config(weights="random", optimizer="adam")
    layers = layers_needed(config)
    network = VGGFeatures(common.random_weights(), layers, precision=precision).to(memory_format=torch.channels_last)
    content, style = (prepare(image, cpu) for image in common.example_images(size))
    floor_image = content.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)

    def floor():
        floor_image.grad = None
        sum(out.sum() for out in network(floor_image).values()).backward()

    objectives = {"Gram": standard_terms(config.pick(LossSettings), network, content, [style]),
                  "W2": standard_terms(config.replace(style_loss="wasserstein").pick(LossSettings), network, content, [style])}
    settings = OptimizerSettings("adam", config.learning_rate, tuple(config.adam_betas))

    def loop(terms):
        def run():
            timer = common.StepTimer()
            engine.optimize(network, content, terms, settings, steps=steps + 1, callbacks=[timer])
            return timer.times  # the first step of each call is warm-up, not timed
        return run

    variants = {"floor": lambda: common.timed(floor, steps), "Gram": loop(objectives["Gram"])}
    if wasserstein:
        variants["W2"] = loop(objectives["W2"])
    return common.interleaved(variants, repeats)


def main() -> None:
    parser = common.timing_arguments(__doc__.splitlines()[0], "256,512", repeats=5, steps=3)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--no-wasserstein", action="store_true", help="floor and Gram only (W2 at 512 px is slow)")
    args = parser.parse_args()
    common.begin()
    print(f"precision {args.precision}; Adam, default objective, untrained VGG19\n")
    headers = ["px", "floor s", "Gram step s", "W2 step s", "Gram / floor", "W2 / Gram"]
    rows = []
    for size in args.sizes:
        t = measure(size, args.repeats, args.steps, args.precision, not args.no_wasserstein)
        w2 = t.get("W2")
        rows.append([size, t["floor"], t["Gram"], "-" if w2 is None else w2, t["Gram"] / t["floor"],
                     "-" if w2 is None else w2 / t["Gram"]])
        # Each size's row as soon as it is measured: a long run stopped early still leaves figures.
        print(common.table(headers, rows[-1:]), file=sys.stderr, flush=True)
    print(common.table(headers, rows))


if __name__ == "__main__":
    main()
