"""Where one nstcli step spends its time beyond the network's forward + backward (the floor).

Each part of the default loop is timed on its own, many times, on tensors of the real sizes, so the
figures are not differences of two noisy totals:

- floor:          the frozen VGG19 forward + backward to the input (sum of outputs as the loss);
- loss terms:     Gram matrices, style and content terms and their backward, from fixed features
                  to the gradient at those features (what the objective adds to the floor), and
                  the same terms written with plain autograd for comparison;
- L-BFGS update:  nstcli's L-BFGS step with a full history of 100 pairs around a closure that costs
                  nothing (history update, search direction, pixel update), and torch.optim.LBFGS's
                  for comparison;
- clamp:          keeping the pixels in [0, 1];
- read losses:    turning the loss terms into Python floats (a device sync on a GPU);
- report + bar:   building the StepReport and the callbacks the CLI uses (loss log, tqdm bar).

    python benchmarks/stylize/profile_step.py [--sizes 256,512] [--ops]

--ops also prints torch.profiler's operator table for three real steps at the first size.
"""

from __future__ import annotations

import sys
import argparse
import contextlib
import io
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common
from nstcli import api
from nstcli.network.load import layers_needed
from nstcli.optim import engine
from nstcli.optim.callbacks import LossLog
from nstcli.config.fields import Config
from nstcli.image.io import prepare
from common import standard_terms
from nstcli.terms.settings import LossSettings
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.cli.progress import ProgressBar
from nstcli.terms import content as content_terms
from nstcli.terms import gram as gram_terms


def build(size: int):
    config = Config(weights="random", size=size)
    network = api.load_network(config, torch.device("cpu"))
    content, style = common.example_images(size)
    content, style = prepare(content, torch.device("cpu")), prepare(style, torch.device("cpu"))
    return config, network, content, standard_terms(config.pick(LossSettings), network, content, [style])


def loss_terms_timer(network, content, objective, repeats, autograd_only=False):
    """Forward + backward of the loss terms alone, from features that are leaves.

    autograd_only: the same terms written with plain autograd (the textbook Gram matrix), for
    comparison with nstcli's hand-written backwards.
    """
    content_part, style_part = objective[0], objective[1]

    def style(features, target):
        if autograd_only:
            return gram_terms.style_loss(gram_terms.gram_matrix(features), target)
        return gram_terms.gram_style_loss(features, target)

    def content_term(features, target):
        if autograd_only:
            return 0.5 * torch.mean((features - target) ** 2)
        return content_terms.content_loss(features, target)

    with torch.no_grad():
        features = network(content)
    leaves = {name: f.clone().requires_grad_(True) for name, f in features.items()}

    def once():
        content_sum = sum(content_term(leaves[n], t) for n, t in content_part.targets.items())
        style_sum = sum(w * style(leaves[n], style_part.targets[n]) for n, w in style_part.layer_weights.items())
        total = content_part.weight * content_sum + style_part.weight * style_sum
        torch.autograd.grad(total, list(leaves.values()))

    once()
    return common.median(common.timed(once, repeats))


def lbfgs_timer(make_optimizer, numel, history, repeats):
    """One L-BFGS step with `history` pairs stored, around a closure that only hands out a gradient."""
    x = torch.zeros(numel).requires_grad_(True)
    opt = make_optimizer(x)
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(numel, generator=generator) + 0.5
    target = torch.empty(numel)

    def closure():
        # A quadratic whose minimum moves at random every call: the iterate stays bounded, pairs
        # with s.y > 0 keep coming (about half are kept), nothing converges, and the history fills
        # up as in a long run.
        torch.rand(numel, generator=generator, out=target)
        x.grad = (x.detach() - target).mul_(weights)
        return torch.zeros(())

    for _ in range(3 * history):
        opt.step(closure)
    times = common.timed(lambda: opt.step(closure), repeats)
    closure_time = common.median(common.timed(closure, repeats))
    return common.median(times) - closure_time, stored_pairs(opt)


def stored_pairs(opt) -> int:
    if isinstance(opt, torch.optim.LBFGS):
        return len(opt.state[opt._params[0]]["old_dirs"])
    return opt._count


def torch_lbfgs(x):
    """What nstcli used before its own L-BFGS: the same steps, as torch computes them."""
    return torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=100, tolerance_grad=0.0,
                             tolerance_change=0.0)


def bookkeeping_timers(image, repeats):
    terms = {k: torch.rand(()) for k in ("total", "content", "style", "tv")}
    pixels = image.permute(0, 2, 3, 1).contiguous()

    def clamp():
        with torch.no_grad():
            pixels.clamp_(0.0, 1.0)

    def read():
        return [float(terms[k]) for k in ("total", "content", "style", "tv")]

    log = LossLog()
    bar = ProgressBar()
    bar.on_start(10**9)

    def report():
        values = read()
        r = engine.StepReport(step=1, total=10**9, loss=values[0],
                              terms={"content": values[1], "style": values[2], "tv": values[3]},
                              image=pixels.permute(0, 3, 1, 2), size=tuple(image.shape[-2:]))
        log.on_step(r)
        bar.on_step(r)

    out = {name: common.median(common.timed(fn, repeats)) for name, fn in
           (("clamp", clamp), ("read losses", read), ("report + bar", report))}
    bar.on_end()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of the floor")
    parser.add_argument("--ops", action="store_true", help="print the operator profile too")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(common.machine())
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        config, network, content, objective = build(size)
        floor = common.Floor(common.random_weights(), layers_needed(config), content)
        floor.step()
        floor_time = common.median(common.timed(floor.step, args.repeats))
        parts = {"loss terms": loss_terms_timer(network, content, objective, 10 * args.repeats),
                 "loss terms, plain autograd (not used)": loss_terms_timer(
                     network, content, objective, 10 * args.repeats, autograd_only=True)}
        lbfgs, stored = lbfgs_timer(lambda x: engine.make_optimizer(OptimizerSettings("lbfgs", 1.0), x), content.numel(),
                                    100, 10 * args.repeats)
        parts[f"L-BFGS update ({stored} pairs)"] = lbfgs
        lbfgs, stored = lbfgs_timer(torch_lbfgs, content.numel(), 100, 10 * args.repeats)
        parts[f"L-BFGS update ({stored} pairs), torch.optim.LBFGS (not used)"] = lbfgs
        with contextlib.redirect_stderr(io.StringIO()):  # the bar's own output is not the point
            parts.update(bookkeeping_timers(content, 100))
        rows.append([f"{size}: floor", floor_time * 1000, 100.0])
        for name, seconds in parts.items():
            rows.append([f"{size}: {name}", seconds * 1000, 100 * seconds / floor_time])
    print(common.table(["part", "ms per step", "% of floor"], rows))

    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        config, network, content, objective = build(sizes[0])
        settings = OptimizerSettings("lbfgs", 1.0)
        engine.optimize(network, content, objective, settings, steps=2)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            engine.optimize(network, content, objective, settings, steps=3)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
