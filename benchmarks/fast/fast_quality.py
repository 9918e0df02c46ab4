"""Quality of a fast style network against `nst stylize`'s defaults, on photos it was not trained on.

usage: python benchmarks/fast/fast_quality.py --model MODEL --style STYLE PHOTO [PHOTO ...] [--size 384]
       [--stylized DIR] [--judge PATH/judge.py] [--figure docs/fast.jpg] [--stylize-args "..."]

For each photo: `nst apply MODEL` at --size, and `nst stylize PHOTO STYLE` with its defaults (or the
file DIR/<stem>_stylize.png when --stylized holds one from an earlier run: stylize takes minutes a
photo); then the judge (`../shared/tools/judge.py`: content and style errors with the original VGG19
on layers neither method optimises) on both, and the ratios fast / stylize. --figure writes the
photos, stylize's results and the network's side by side with their errors. The grid column is
fast_grid.py's figure for the network's output (the stronger of periods 2 and 4 px; 1 to 6 for a
photo, tens where a regular texture is visible at 100 %).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JUDGE = ROOT.parent / "shared" / "tools" / "judge.py"


def nst(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "nstcli", *args, "--json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if done.returncode:
        raise SystemExit(f"nst {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def judge(script: Path, photo: Path, style: Path, outputs: list[Path], size: int) -> list[tuple[float, float]]:
    done = subprocess.run([sys.executable, str(script), str(photo), str(style), *map(str, outputs), "--size", str(size)],
                          capture_output=True, text=True, check=True)
    rows = [line.split() for line in done.stdout.splitlines()[1:] if line.strip()]
    return [(float(row[-2]), float(row[-1])) for row in rows]


def figure(path: Path, rows: list[tuple[Path, Path, Path, str, str]]) -> None:
    from PIL import Image, ImageDraw

    height = 256
    tiles = []
    for photo, slow, fast, slow_label, fast_label in rows:
        images = [Image.open(p).convert("RGB") for p in (photo, slow, fast)]
        images = [im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS) for im in images]
        tiles.append((images, ["photo (not in training)", slow_label, fast_label]))
    width = max(sum(im.width for im in images) for images, _ in tiles) + 4 * 8
    sheet = Image.new("RGB", (width, len(tiles) * (height + 24) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    y = 8
    for images, labels in tiles:
        x = 8
        for image, label in zip(images, labels):
            sheet.paste(image, (x, y))
            draw.text((x + 2, y + height + 4), label, fill="black")
            x += image.width + 8
        y += height + 24
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--model", required=True, type=Path, help="a model file, or 'untrained' (smoke test)")
    parser.add_argument("--style", required=True, type=Path)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--stylized", type=Path, default=None)
    parser.add_argument("--judge", type=Path, default=JUDGE)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--stylize-args", default="", help="extra nst stylize flags (default: none, its defaults)")
    parser.add_argument("--out", type=Path, default=Path("fast_quality_out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if str(args.model) == "untrained":  # a smoke test of the script itself: an untrained tiny network
        sys.path.insert(0, str(ROOT / "src"))
        import torch

        from nstcli.fast import modelfile
        from nstcli.fast.network import Architecture, TransformNet

        torch.manual_seed(0)
        net = TransformNet(Architecture(8, 1))
        args.model = modelfile.save(args.out / "untrained.safetensors", net.state_dict(),
                                    modelfile.ModelInfo(net.architecture, "untrained"))
    table, shown = [], []
    for photo in args.photos:
        fast = args.out / f"{photo.stem}_fast.png"
        started = time.perf_counter()
        nst("apply", str(args.model), str(photo), "-o", str(fast), "--size", str(args.size), "--overwrite", "--quiet")
        fast_seconds = time.perf_counter() - started
        slow = args.stylized / f"{photo.stem}_stylize.png" if args.stylized else None
        slow_seconds = None
        if slow is None or not slow.exists():
            slow = args.out / f"{photo.stem}_stylize.png"
            summary = nst("stylize", str(photo), str(args.style), "-o", str(slow), "--size", str(args.size),
                          "--quiet", "--checkpoint-every", "0", *shlex.split(args.stylize_args))
            slow_seconds = summary["seconds"]
        errors = judge(args.judge, photo, args.style, [slow, fast], args.size) if args.judge.exists() else None
        table.append((photo.name, errors, slow_seconds, fast_seconds))
        label = (lambda name, e: f"{name}: content {e[0]:.3f}, style {e[1]:.3f}") if errors else (lambda name, e: name)
        shown.append((photo, slow, fast, label("nst stylize defaults", errors[0] if errors else None),
                      label("fast network", errors[1] if errors else None)))
        print(f"{photo.name}: {errors}", flush=True)
    if not args.judge.exists():
        print(f"(no judge at {args.judge}: errors not computed)")
    from fast_grid import grid_strength  # benchmarks/fast/ is on sys.path when run as a script

    print("\n| photo | stylize content | stylize style | fast content | fast style | content ratio | style ratio "
          "| grid | stylize s | apply s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, errors, slow_seconds, fast_seconds), (_, _, fast, _, _) in zip(table, shown):
        grid = max(grid_strength(fast).values())
        (sc, ss), (fc, fs) = errors if errors else ((float("nan"),) * 2, (float("nan"),) * 2)
        print(f"| {name} | {sc:.4f} | {ss:.4f} | {fc:.4f} | {fs:.4f} | {fc / sc if sc else float('nan'):.2f} | "
              f"{fs / ss if ss else float('nan'):.2f} | {grid:.1f} | {'' if slow_seconds is None else f'{slow_seconds:.0f}'} | "
              f"{fast_seconds:.1f} |")
    if args.figure:
        figure(args.figure, shown)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
