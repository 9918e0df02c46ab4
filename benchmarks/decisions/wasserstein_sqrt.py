"""The matrix square root inside the Wasserstein-2 style term: cost and accuracy of the alternatives.

The term needs, per style layer, tr((A Sigma A)^1/2) and its gradient (A = Sigma_t^1/2, C x C with
C = 64 ... 512). Variants, each giving the loss of all five style layers and its gradient with
respect to the features:

- eigh f64:    nstcli's term: the C x C work (A Sigma A, its eigendecomposition, the gradient
               1/2 A M^-1/2 A) in float64, the moments (the product over positions) in float64 where a
               layer has fewer than 4 positions per channel and in float32 elsewhere;
- eigh f64, f32 moments / f64 moments: the same with every layer's moments in float32 / float64;
- eigh f32:    the C x C work in float32 (moments in float32);
- NS12 f32:    12 coupled Newton-Schulz iterations on M / |M|_F in float32, backward by autograd
               through the iterations (crowsonkb/style-transfer-pytorch takes 12 iterations);
- NS12 f64:    the same in float64;
- warm NS k:   k Newton-Schulz iterations in float64 started from the previous step's inverse root
               (Y0 = M Z_prev, Z0 = Z_prev; the first step is solved exactly by eigh); the trace
               of Y_k is the value and 1/2 A Z_k A the gradient.

Accuracy is measured along a real trajectory: Adam (lr 0.02, betas 0.9/0.99, the recipe's) on the
bundled content image against the style's statistics at `--size`, driven by the float64 term, for
`--steps` steps. At every step each variant's loss and feature gradient are compared with a float64
reference (the features themselves cast to float64, everything in float64): the worst relative error
over the trajectory is reported. Cost is the median over interleaved repetitions of one evaluation
(forward + backward, all five layers) on the last step's features, as a ratio to eigh f64, and
`step` rows give a whole step (VGG19 forward + backward + term) with the W2 term against the same
step with nstcli's Gram term, at each size of `--sizes`.

Untrained VGG19 weights (seeded): costs do not depend on the weights; accuracies do a little (the
activations' spread sets the conditioning), so the table says which weights it used.

    python benchmarks/decisions/wasserstein_sqrt.py [--size 256] [--steps 12] [--repeats 5] [--sizes 256,512]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common  # first: it sets up OpenMP before torch loads (as `nst` does)

import torch
from nstcli.network.features import VGGFeatures
from nstcli.terms.gram import gram_matrix, gram_style_loss
from nstcli.terms import wasserstein
from nstcli.terms.wasserstein import (GaussianTarget, WassersteinStyle, covariance, moments,
                                      positions_by_channels, w2_layer_loss)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
RIDGE = 1e-4


# --- the variants: each maps (mean, second moment, target) -> loss, differentiable in the moments ---
# (eigh f64 is nstcli's own term, run on the features; every other variant gets its moments from the
# same float32 product and its feature gradient from the same single product in `evaluate`, so the
# table compares the C x C work alone.)

def eigh32(mean, second, target, state):
    return _TraceRootEigh32.apply(mean, second, target)


class _TraceRootEigh32(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mean, second, target):
        a = target.sqrt_cov.float()
        cov = covariance(mean, second, RIDGE)
        values, vectors = torch.linalg.eigh(a @ cov @ a)
        values = values.clamp_min(0)
        diff = mean - target.mean.float()
        c = mean.shape[0]
        ctx.save_for_backward(mean, diff, values, vectors, a)
        return (diff @ diff + torch.diagonal(cov).sum() + target.trace_cov - 2 * values.sqrt().sum()) / c

    @staticmethod
    def backward(ctx, grad):
        mean, diff, values, vectors, a = ctx.saved_tensors
        c = mean.shape[0]
        av = a @ vectors
        inv_root = values.clamp_min(values[-1] * torch.finfo(values.dtype).eps).rsqrt()
        g_cov = (torch.eye(c) - (av * inv_root) @ av.t()) * (grad / c)
        # Sigma = S - mu mu^T: dE/dS = G, dE/dmu = 2 (mu - mu_t) / C - 2 G mu.
        g_mean = 2 * diff * (grad / c) - 2 * g_cov @ mean
        return g_mean, g_cov, None


def _newton_schulz(m, iterations):
    """Coupled Newton-Schulz on M / |M|_F: (sqrt(M), M^-1/2) after `iterations` steps."""
    norm = m.norm()
    y = m / norm
    eye = torch.eye(m.shape[0], dtype=m.dtype)
    z = eye.clone()
    for _ in range(iterations):
        t = 0.5 * (3 * eye - z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt(), z / norm.sqrt()


def ns12(dtype):
    def variant(mean, second, target, state):
        mean, second = mean.to(dtype), second.to(dtype)
        a = target.sqrt_cov.to(dtype)
        cov = covariance(mean, second, RIDGE)
        root, _ = _newton_schulz(a @ cov @ a, 12)
        diff = mean - target.mean.to(dtype)
        c = mean.shape[0]
        return ((diff @ diff + torch.diagonal(cov).sum() + target.trace_cov
                 - 2 * torch.diagonal(root).sum()) / c).float()
    return variant


def warm_ns(iterations):
    def variant(mean, second, target, state):
        return _WarmNS.apply(mean.double(), second.double(), target, state, iterations).float()
    return variant


class _WarmNS(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mean, second, target, state, iterations):
        a = target.sqrt_cov
        cov = covariance(mean, second, RIDGE)
        m = a @ cov @ a
        c = mean.shape[0]
        previous = state.get(id(target))
        if previous is None:  # the first step of a scale: solve exactly
            values, vectors = torch.linalg.eigh(m)
            values = values.clamp_min(values[-1] * 1e-16)
            y = (vectors * values.sqrt()) @ vectors.t()
            z = (vectors * values.rsqrt()) @ vectors.t()
        else:
            z = previous
            y = m @ z
            eye = torch.eye(c, dtype=m.dtype)
            for _ in range(iterations):
                t = 0.5 * (3 * eye - z @ y)
                y, z = y @ t, t @ z
            z = 0.5 * (z + z.t())
        state[id(target)] = z
        diff = mean - target.mean
        ctx.save_for_backward(mean, diff, z, a)
        return (diff @ diff + torch.diagonal(cov).sum() + target.trace_cov - 2 * torch.diagonal(y).sum()) / c

    @staticmethod
    def backward(ctx, grad):
        mean, diff, z, a = ctx.saved_tensors
        c = mean.shape[0]
        g_cov = (torch.eye(c, dtype=z.dtype) - a @ z @ a) * (grad / c)
        g_mean = 2 * diff * (grad / c) - 2 * g_cov @ mean
        return g_mean, g_cov, None, None, None


VARIANTS = {
    "eigh f64": None,
    "eigh f64, f32 moments": False,
    "eigh f64, f64 moments": True,
    "eigh f32": eigh32,
    "NS12 f32": ns12(torch.float32),
    "NS12 f64": ns12(torch.float64),
    "warm NS 1": warm_ns(1),
    "warm NS 2": warm_ns(2),
    "warm NS 3": warm_ns(3),
}


def evaluate(variant, features, targets, state):
    """(loss, [grad of each layer's features]) of the sum over the style layers."""
    if variant is None or isinstance(variant, bool):  # nstcli's term, its moments' precision forced or not
        leaves = [features[k].detach().requires_grad_(True) for k in STYLE_LAYERS]
        loss = sum(w2_layer_loss(leaf, targets[k], RIDGE, float64_moments=variant)
                   for leaf, k in zip(leaves, STYLE_LAYERS))
        return float(loss.detach()), torch.autograd.grad(loss, leaves)
    total, grads = 0.0, []
    for k in STYLE_LAYERS:
        with torch.no_grad():
            mean, second = moments(features[k])
        mean.requires_grad_(True)
        second.requires_grad_(True)
        loss = variant(mean, second, targets[k], state)
        g_mean, g_second = torch.autograd.grad(loss, [mean, second])
        # mean = 1^T X / M and second = X^T X / M, so dX = (X (g + g^T) + 1 g_mean^T) / M.
        x = positions_by_channels(features[k])
        dx = torch.addmm(g_mean.float().unsqueeze(0), x, (g_second + g_second.t()).float()) / x.shape[0]
        grads.append(dx)
        total += float(loss.detach())
    return total, grads


def reference(features, targets):
    """Everything in float64, the features included."""
    leaves = {k: features[k].detach().double().requires_grad_(True) for k in STYLE_LAYERS}
    loss = sum(w2_layer_loss(leaves[k], targets[k], RIDGE) for k in STYLE_LAYERS)
    grads = torch.autograd.grad(loss, [leaves[k] for k in STYLE_LAYERS])
    return float(loss.detach()), grads


def relative_error(grads, reference_grads) -> float:
    grads = [g if g.dim() == 2 else positions_by_channels(g) for g in grads]
    reference_grads = [positions_by_channels(r) for r in reference_grads]
    num = sum(float((g.double() - r).pow(2).sum()) for g, r in zip(grads, reference_grads))
    den = sum(float(r.pow(2).sum()) for r in reference_grads)
    return (num / den) ** 0.5


def accuracy_and_cost(size: int, steps: int, repeats: int):
    state_dict = common.random_weights()
    content, style = common.example_images(size)
    network = VGGFeatures(state_dict, STYLE_LAYERS).to(memory_format=torch.channels_last)
    with torch.no_grad():
        style_features = network(style.contiguous(memory_format=torch.channels_last))
    targets = {k: GaussianTarget.from_moments(*moments(style_features[k], in_float64=True), RIDGE)
               for k in STYLE_LAYERS}
    term = WassersteinStyle(targets, {k: 1.0 for k in STYLE_LAYERS}, weight=1.0)

    image = content.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=0.02, betas=(0.9, 0.99))
    worst = {name: [0.0, 0.0] for name in VARIANTS}
    warm_states = {name: {} for name in VARIANTS}
    losses = []
    features = None
    for _ in range(steps):
        features = {k: v.detach() for k, v in network(image.detach()).items()}
        ref_loss, ref_grads = reference(features, targets)
        losses.append(ref_loss)
        for name, variant in VARIANTS.items():
            loss, grads = evaluate(variant, features, targets, warm_states[name])
            worst[name][0] = max(worst[name][0], abs(loss - ref_loss) / abs(ref_loss))
            worst[name][1] = max(worst[name][1], relative_error(grads, ref_grads))
        optimizer.zero_grad()
        value = term(network(image), image)
        value.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)

    times = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name, variant in VARIANTS.items():
            state = dict(warm_states[name])  # warm variants keep the last step's root
            times[name] += common.timed(lambda: evaluate(variant, features, targets, state), 1)
    base = common.median(times["eigh f64"])
    rows = [[name, worst[name][0], worst[name][1], common.median(times[name]) * 1e3,
             common.median(times[name]) / base] for name in VARIANTS]
    return rows, losses


class StepRun:
    """One optimisation step: VGG19 forward to relu5_1, the style term, backward to the pixels.

    `float64_below` sets the W2 term's threshold of positions per channel under which its moments
    are taken in float64 (0: never, a large number: always; None: nstcli's own).
    """

    def __init__(self, network, image, term, float64_below=None):
        self.network, self.term, self.float64_below = network, term, float64_below
        self.image = image.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)

    def step(self):
        saved = wasserstein.FLOAT64_MOMENTS_BELOW
        if self.float64_below is not None:
            wasserstein.FLOAT64_MOMENTS_BELOW = self.float64_below
        try:
            self.image.grad = None
            self.term(self.network(self.image)).backward()
        finally:
            wasserstein.FLOAT64_MOMENTS_BELOW = saved


STEP_VARIANTS = ("floor", "Gram", "W2", "W2 f32 moments", "W2 f64 moments")


def step_costs(size: int, repeats: int):
    state_dict = common.random_weights()
    content, style = common.example_images(size)
    network = VGGFeatures(state_dict, STYLE_LAYERS).to(memory_format=torch.channels_last)
    with torch.no_grad():
        style_features = network(style.contiguous(memory_format=torch.channels_last))
    grams = {k: gram_matrix(v) for k, v in style_features.items()}
    w2 = WassersteinStyle.from_features([style_features], [1.0], {k: 1.0 for k in STYLE_LAYERS}, 1.0)

    def gram_term(features):
        return sum(gram_style_loss(features[k], grams[k]) for k in STYLE_LAYERS)

    def w2_term(features):
        return w2(features, content)

    def floor(features):
        return sum(f.sum() for f in features.values())

    runs = dict(zip(STEP_VARIANTS, [StepRun(network, content, floor), StepRun(network, content, gram_term),
                                    StepRun(network, content, w2_term), StepRun(network, content, w2_term, 0),
                                    StepRun(network, content, w2_term, 1 << 40)]))
    times = {name: [] for name in runs}
    for run in runs.values():
        run.step()  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            times[name] += common.timed(run.step, 1)
    medians = {name: common.median(t) for name, t in times.items()}
    return [size, *medians.values(), *(medians[k] / medians["Gram"] for k in STEP_VARIANTS[2:])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="image size for the accuracy trajectory")
    parser.add_argument("--steps", type=int, default=12, help="trajectory steps (0: whole-step rows only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="256,512", help="sizes for the whole-step rows ('' for none)")
    args = parser.parse_args(argv)
    torch.manual_seed(common.SEED)
    print(common.machine(), file=sys.stderr)

    if args.steps:
        rows, losses = accuracy_and_cost(args.size, args.steps, args.repeats)
        print(f"Accuracy over {args.steps} Adam steps at {args.size} px (untrained VGG19, seed {common.SEED}; "
              f"loss {losses[0]:.4g} -> {losses[-1]:.4g}); cost of one evaluation of the five layers:\n")
        print(common.table(["variant", "worst rel. err. loss", "worst rel. err. grad", "ms",
                            "ratio to eigh f64"], rows))
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if sizes:
        print("\nWhole step (VGG19 forward + backward + style term over relu1_1..relu5_1), seconds:\n")
        headers = ["px", *(f"{k} s" for k in STEP_VARIANTS), *(f"{k} / Gram" for k in STEP_VARIANTS[2:])]
        print(common.table(headers, [step_costs(s, args.repeats) for s in sizes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
