"""Training throughput of `nst train` beside pytorch/examples' fast_neural_style, on this machine.

usage: python benchmarks/fast/fast_train.py --examples PATH/TO/pytorch-examples --data DIR [--size 128]
       [--batch 2] [--steps 10] [--rounds 2] [--precision auto|fp32|bf16]

Both train for `--steps` updates at the same crop size and batch, on the same photos, with the same
style image, one after the other (alternating for `--rounds`); each reports images per second over
its updates only (start-up, model loading and the style targets excluded):
- nstcli: `nst train --width 32 --blocks 5` (Johnson's network, as theirs) with its default loss
  (the original VGG19 up to relu5_1), images/s from its --json summary;
- pytorch/examples: their `neural_style.py train`, run from their own folder as their README says, with
  a wrapper that records the time of every Adam step (their code is not changed or copied). Their
  VGG16 would download ImageNet weights; the wrapper gives it untrained ones instead, which costs the
  same (the time of a step does not depend on the weights' values), and restores the name
  `Image.ANTIALIAS` (Pillow 10 renamed it LANCZOS) that their utils.py still uses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = r'''
import runpy, sys, time, json, torch, torchvision
import PIL.Image
if not hasattr(PIL.Image, "ANTIALIAS"):  # their utils.py uses the name Pillow 10 removed (same filter)
    PIL.Image.ANTIALIAS = PIL.Image.LANCZOS
real_vgg16 = torchvision.models.vgg16
torchvision.models.vgg16 = lambda *a, **k: real_vgg16(weights=None)
times = []
step = torch.optim.Adam.step
def timed(self, *a, **k):
    out = step(self, *a, **k)
    times.append(time.perf_counter())
    return out
torch.optim.Adam.step = timed
sys.argv = ["neural_style.py"] + sys.argv[1:]
sys.path.insert(0, ".")
try:
    runpy.run_path("neural_style.py", run_name="__main__")
finally:
    batch = int(sys.argv[sys.argv.index("--batch-size") + 1])
    # from the end of the first step to the end of the last: steps 2..n
    print("BENCH " + json.dumps({"steps": len(times), "images_per_second":
          (len(times) - 1) * batch / (times[-1] - times[0]) if len(times) > 1 else None}))
'''


def ours(data: Path, style: Path, size: int, batch: int, steps: int, work: Path, extra=()) -> float:
    output = work / "ours.safetensors"
    for stale in (output, work / "ours_training" / "checkpoint.pt"):
        stale.unlink(missing_ok=True)
    command = [sys.executable, "-m", "nstcli", "train", str(style), "--data", str(data), "-o", str(output),
               "--crop-size", str(size), "--batch-size", str(batch), "--steps", str(steps), "--width", "32",
               "--blocks", "5", "--checkpoint-every", "0", "--preview-every", "0", "--quiet", "--json", *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return json.loads(done.stdout)["images_per_second"]


def theirs(examples: Path, data: Path, style: Path, size: int, batch: int, steps: int, work: Path) -> float:
    folder = examples / "fast_neural_style" / "neural_style"
    photos = work / "imagefolder" / "photos"  # ImageFolder wants a class folder
    photos.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    needed = steps * batch
    for index in range(needed):  # enough photos for `steps` batches in one epoch
        link = photos / f"{index:04d}{files[index % len(files)].suffix}"
        if not link.exists():
            link.symlink_to(files[index % len(files)].resolve())
    wrapper = work / "timed_run.py"
    wrapper.write_text(WRAPPER)
    command = [sys.executable, str(wrapper), "train", "--dataset", str(photos.parent), "--style-image", str(style),
               "--save-model-dir", str(work / "theirs"), "--epochs", "1", "--batch-size", str(batch),
               "--image-size", str(size), "--style-size", str(int(size * 1.5)), "--log-interval", "1000"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"pytorch/examples run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(line[6:])["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=Path, default=None,
                        help="a checkout of github.com/pytorch/examples (without it: nstcli only)")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of photos (default: four crops of examples/content.jpg)")
    parser.add_argument("--style", type=Path, default=ROOT / "examples" / "style.jpg")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--weights", default="original", help="nstcli's VGG19 (random: for a smoke test)")
    parser.add_argument("--precision", default="auto", help="nstcli's --precision (theirs is always fp32)")
    args = parser.parse_args()
    from fast_apply import cpu_name  # benchmarks/ is on sys.path when run as a script

    print(f"CPU: {cpu_name()}, os.cpu_count() {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    a, b = [], []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if args.data is None:
            from PIL import Image

            args.data = work / "photos"
            args.data.mkdir()
            with Image.open(ROOT / "examples" / "content.jpg") as photo:
                for index in range(4):
                    photo.crop((index * 20, index * 10, index * 20 + 400, index * 10 + 300)).save(args.data / f"{index}.png")
        for round_ in range(args.rounds):
            a.append(ours(args.data, args.style, args.size, args.batch, args.steps, work, ["--weights", args.weights,
                                                                                "--precision", args.precision]))
            if args.examples is None:
                print(f"round {round_ + 1}: nstcli {a[-1]:.3f} img/s", flush=True)
                continue
            b.append(theirs(args.examples, args.data, args.style, args.size, args.batch, args.steps, work))
            print(f"round {round_ + 1}: nstcli {a[-1]:.3f} img/s, pytorch/examples {b[-1]:.3f} img/s", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print("\n| crop px | batch | nstcli precision | nstcli img/s | pytorch/examples img/s (fp32) | nstcli / examples |")
    print("|---|---|---|---|---|---|")
    theirs_median = statistics.median(b) if b else None
    print(f"| {args.size} | {args.batch} | {args.precision} | {statistics.median(a):.3f} | "
          + (f"{theirs_median:.3f} | {statistics.median(a) / theirs_median:.2f} |" if theirs_median else "- | - |"))


if __name__ == "__main__":
    main()
