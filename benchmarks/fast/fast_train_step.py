"""A training step of `nst train` in fp32 and bf16, and what has to stay fp32 in it.

usage: python benchmarks/fast/fast_train_step.py [--width 32] [--blocks 5] [--batch 4] [--crop 256]
       [--rounds 3] [--steps 2] [--layouts nchw,channels_last]

Step time: `nstcli.fast.loss.train_step` (the loop's own step: the network's forward, the perceptual
loss on VGG19, backward, Adam) on an untrained VGG19 (the time does not depend on the weights'
values), fp32 and bf16 interleaved for `--rounds` rounds of `--steps` timed steps after a warm-up
step each; per variant the median step. Variants are the precision (fp32: VGG19 and the network in
fp32; bf16: VGG19's bf16 copy and the network under autocast) times the memory layout of the
transformation network's weights and crops (`nchw`, or `channels_last`).

What stays fp32, measured on the same step in bf16:
- the loss sums: the style loss of one batch computed from bf16 Gram matrices against the fp32 sum
  of the same bf16 activations (relative error of the loss and of its gradient at the output);
- the weights and Adam's moments: the share of the network's weights that one Adam step of
  `--lr` (Adam moves each weight by about lr) would leave unchanged if the weights were stored in
  bf16, on a trained `--model` (or the untrained network after `--train-steps` steps).
Prints the CPU and Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from nstcli.runtime import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()

import torch  # noqa: E402

from nstcli.config.fields import Config  # noqa: E402
from nstcli.fast.network import Architecture, TransformNet  # noqa: E402
from nstcli.fast.loss import Perceptual, train_step  # noqa: E402
from nstcli.runtime import has_native_bf16  # noqa: E402

from fast_apply import cpu_name  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def setup(args, precision: str, layout: str):
    torch.manual_seed(0)
    config = Config(weights="random", style_weight=10.0)
    style = torch.rand(1, 3, int(args.crop * 1.5), int(args.crop * 1.5), generator=torch.Generator().manual_seed(1))
    loss = Perceptual(config, style, torch.device("cpu"), precision)
    net = TransformNet(Architecture(args.width, args.blocks))
    format_ = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=format_)
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr)
    batch = torch.rand(args.batch, 3, args.crop, args.crop, generator=torch.Generator().manual_seed(2))
    batch = batch.contiguous(memory_format=format_)
    return net, optimiser, loss, batch


def time_steps(state, precision: str, steps: int) -> list[float]:
    net, optimiser, loss, batch = state
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(net, optimiser, loss, batch, precision)
        times.append(time.perf_counter() - start)
    return times


def loss_sum_error(args) -> tuple[float, float]:
    """Relative error of a Gram loss (and its gradient) whose sums are bf16 rather than fp32.

    Near the end of training the output's Gram matrices are close to the style's, and the loss is a
    sum of squares of small differences of large sums: the case where bf16's 8 bits show. The target
    is the same batch's Gram matrices after 1 % noise, a loss of that kind.
    """
    from nstcli.terms.gram import gram_matrix

    net, _, loss, batch = setup(args, "bf16", "nchw")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(batch)
    out = out.float().detach().requires_grad_(True)
    features = loss.network(out)
    noisy = {name: value.detach() * (1 + 0.01 * torch.randn(value.shape, generator=torch.Generator().manual_seed(3)))
             for name, value in features.items()}
    results = []
    for dtype in (torch.float32, torch.bfloat16):
        total = 0
        for name in loss.config.style_layers:
            gram, target = gram_matrix(features[name].to(dtype)), gram_matrix(noisy[name].to(dtype))
            total = total + ((gram - target) ** 2).sum() / (target ** 2).sum()
        grad, = torch.autograd.grad(total.float(), out, retain_graph=True)
        results.append((float(total.detach()), grad))
    (exact, g32), (low, g16) = results
    return abs(low - exact) / abs(exact), float((g16 - g32).norm() / g32.norm())


def lost_updates(args) -> float:
    """Share of weights an Adam step of size lr would not move if the weights were stored in bf16."""
    if args.model:
        from nstcli.fast.modelfile import load

        net, _ = load(args.model)
    else:
        net, optimiser, loss, batch = setup(args, "bf16", "nchw")
        for _ in range(args.train_steps):
            train_step(net, optimiser, loss, batch, "bf16")
    weights = torch.cat([p.detach().flatten() for p in net.parameters()])
    moved = (weights - args.lr * torch.sign(weights)).bfloat16()
    return float((moved == weights.bfloat16()).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--model", default=None, help="a trained model whose weights the lost-update share is "
                        "measured on (default: the untrained network after --train-steps steps)")
    parser.add_argument("--layouts", default="nchw,channels_last")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    device = torch.device("cpu")
    print(f"CPU: {cpu_name()}, native bf16: {has_native_bf16(device)}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    variants = [(p, l) for p in args.precisions.split(",") for l in args.layouts.split(",")]
    states = {}
    for variant in variants:
        states[variant] = setup(args, *variant)
        time_steps(states[variant], variant[0], 1)  # warm-up: oneDNN picks its kernels per shape
    times: dict = {variant: [] for variant in variants}
    for round_ in range(args.rounds):
        for variant in variants:
            times[variant] += time_steps(states[variant], variant[0], args.steps)
        print(f"round {round_ + 1}: " + ", ".join(f"{p}/{l} {statistics.median(times[(p, l)]):.3f} s"
                                                   for p, l in variants), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    base = statistics.median(times[variants[0]])
    print(f"\nwidth {args.width}, {args.blocks} blocks, batch {args.batch} x {args.crop} px crops, "
          f"{args.rounds} rounds x {args.steps} steps\n")
    print(f"| precision | layout | s/step (median) | / {variants[0][0]} {variants[0][1]} |")
    print("|---|---|---|---|")
    for variant in variants:
        median = statistics.median(times[variant])
        print(f"| {variant[0]} | {variant[1]} | {median:.3f} | {median / base:.2f} |")
    loss_error, grad_error = loss_sum_error(args)
    print("\n| kept in fp32 | measured if it were bf16 |")
    print("|---|---|")
    print(f"| style loss sum (Gram matrices) | loss off by {loss_error:.2e}, gradient off by {grad_error:.2e} "
          "(relative) |")
    where = f"{args.model}'s weights" if args.model else f"after {args.train_steps} steps"
    print(f"| weights and Adam's moments | {lost_updates(args):.1%} of weights ({where}) not moved by a step of "
          f"lr {args.lr:g} |")


if __name__ == "__main__":
    main()
