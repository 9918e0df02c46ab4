"""bf16 autocast and torch.compile against nstcli's plain fp32 loop: step time and loss reached.

    python benchmarks/decisions/precision_compile.py [--size 256] [--steps 30] [--no-compile]

Each variant runs nstcli's engine with the default objective (L-BFGS, relu4_2 / relu1_1..relu5_1,
untrained seeded VGG19) from the content image (the bundled examples squeezed to size x size) for
--steps steps:

- fp32:          what nstcli does (eager, channels_last);
- bf16 autocast: the network runs under torch.autocast(bfloat16), targets included; the loss terms
                 are computed in fp32 from its outputs;
- torch.compile: the network compiled by inductor (default mode); its total time includes compiling.

"loss reached" is the default objective evaluated in fp32 on each variant's final image, relative to
fp32's own; times are ratios to fp32's, measured in one run.
"""

from __future__ import annotations

import sys
import argparse
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common
from nstcli.optim.run import RunSettings  # noqa: E402
from nstcli import api
from nstcli.optim import engine
from nstcli.config.fields import Config
from nstcli.image.io import prepare
from common import standard_terms
from nstcli.terms.settings import LossSettings
from nstcli.terms.base import evaluate


def objective_for(network, config: Config, content, style) -> list:
    return standard_terms(config.pick(LossSettings), network, content, [style])


def run(network, config: Config, content, style, steps: int):
    timer = common.StepTimer()
    started = time.perf_counter()
    objective = objective_for(network, config, content, style)
    image = engine.optimize(network, content, objective, config.pick(RunSettings).optimizer_settings, steps=steps,
                            callbacks=[timer]).image
    return image, time.perf_counter() - started, common.median(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it needs a C++ compiler)")
    args = parser.parse_args()
    common.begin()
    config = Config(weights="random")
    network = api.load_network(config, torch.device("cpu"))
    content, style = (prepare(image, torch.device("cpu")) for image in common.example_images(args.size))
    variants = {
        "fp32 (nstcli)": lambda: network,
        "bf16 autocast": lambda: common.Autocast(network),
        "torch.compile (inductor)": lambda: torch.compile(network),
    }
    if args.no_compile:
        del variants["torch.compile (inductor)"]
    reference = objective_for(network, config, content, style)
    results = {}
    for name, make in variants.items():
        torch._dynamo.reset()
        image, total, step = run(make(), config, content, style, args.steps)
        with torch.no_grad():
            prepared = prepare(image, torch.device("cpu"))
            loss = float(evaluate(reference, network(prepared), prepared)[0])
        results[name] = (loss, total, step)
    loss0, total0, step0 = results["fp32 (nstcli)"]
    rows = [[name, f"{loss:.4g}", loss / loss0, step / step0, total / total0]
            for name, (loss, total, step) in results.items()]
    print(f"{args.size} x {args.size} px, {args.steps} L-BFGS steps each\n")
    print(common.table(["variant", "fp32 loss reached", "loss / fp32", "step time / fp32",
                        "total time / fp32"], rows))


if __name__ == "__main__":
    main()
