"""`nst apply` from the shell: start-up included, beside `python -c "import torch"`, and per image in a folder.

usage: python benchmarks/fast/fast_startup.py [--model starry] [--size 512] [--images 20] [--rounds 3]

Interleaved for `--rounds` rounds, each a fresh process timed from outside (wall clock):
- `python -c "import torch"`: the floor every torch program pays;
- `nst apply MODEL photo.jpg -o out.png`: one photo (examples/content.jpg at `--size` px);
- `nst apply MODEL folder/ -o out/`: `--images` copies of it; per image = (folder - one) / (images - 1),
  the cost of one more image once the process has started.
Then one fresh process split into phases (import torch; import the CLI and nstcli.fast.apply; load the
network; read the photo; the network's pass; write the PNG), to show where the start-up goes.
MODEL is a built-in style's name or a model file; the default is the built-in `starry`, or an
untrained width-16 network when none is installed (the time does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASES = r'''
import json, sys, time
marks = [time.perf_counter()]
import torch
marks.append(time.perf_counter())
import nstcli.cli.main
from nstcli.fast import apply
from nstcli.image.io import load_image, save_image
marks.append(time.perf_counter())
net, _ = apply.load_model(sys.argv[1])
marks.append(time.perf_counter())
photo = load_image(sys.argv[2])
marks.append(time.perf_counter())
from nstcli.runtime import resolve_precision
image = apply.stylize_image(net, photo, precision=resolve_precision("auto", torch.device("cpu"), ("auto", "fp32", "bf16")))
marks.append(time.perf_counter())
save_image(image, sys.argv[3])
marks.append(time.perf_counter())
names = ["import torch", "import nstcli (cli, fast.apply)", "load the network", "read the photo",
         "the network's pass (auto precision)", "write the PNG"]
print(json.dumps(dict(zip(names, [b - a for a, b in zip(marks, marks[1:])]))))
'''


def nst_command() -> list[str]:
    script = Path(sys.executable).with_name("nst")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nstcli"]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from fast_apply import cpu_name  # benchmarks/ is on sys.path when run as a script
    from PIL import Image

    print(f"CPU: {cpu_name()}, os.cpu_count() {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = args.model
        if model is None:
            from nstcli.fast import builtin

            model = "starry" if "starry" in builtin.names() else None
        if model is None:
            import torch

            from nstcli.fast import modelfile
            from nstcli.fast.network import Architecture, TransformNet

            torch.manual_seed(0)
            net = TransformNet(Architecture(16, 5))
            model = str(modelfile.save(folder / "untrained16.safetensors", net.state_dict(),
                                       modelfile.ModelInfo(net.architecture, "untrained")))
        photo = folder / "photo.jpg"
        with Image.open(ROOT / "examples" / "content.jpg") as image:
            image = image.convert("RGB")
            scale = args.size / max(image.size)
            image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS).save(
                photo, quality=95)
        photos = folder / "photos"
        photos.mkdir()
        for index in range(args.images):
            shutil.copy(photo, photos / f"photo_{index:02d}.jpg")
        nst = nst_command()
        times: dict[str, list[float]] = {"import torch": [], "one photo": [], "folder": []}
        for round_ in range(args.rounds):
            times["import torch"].append(wall([sys.executable, "-c", "import torch"]))
            times["one photo"].append(wall([*nst, "apply", model, str(photo), "-o", str(folder / "out.png"),
                                            "--overwrite", "--quiet"]))
            times["folder"].append(wall([*nst, "apply", model, str(photos), "-o", str(folder / f"out_{round_}"),
                                         "--quiet"]))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        phases = subprocess.run([sys.executable, "-c", PHASES, model, str(photo), str(folder / "phases.png")],
                                check=True, capture_output=True, text=True)
        split = json.loads(phases.stdout.splitlines()[-1])
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    floor, one, many = (statistics.median(times[key]) for key in ("import torch", "one photo", "folder"))
    per_image = (many - one) / (args.images - 1) if args.images > 1 else float("nan")
    print(f"\nmodel {model}, photo {args.size} px, {args.rounds} rounds (medians)\n")
    print("| measurement | seconds |")
    print("|---|---|")
    print(f"| python -c 'import torch' | {floor:.2f} |")
    print(f"| nst apply MODEL photo.jpg -o out.png | {one:.2f} |")
    print(f"| the same minus import torch | {one - floor:.2f} |")
    print(f"| nst apply MODEL folder/ ({args.images} images) | {many:.2f} |")
    print(f"| per image in the folder, (folder - one) / {args.images - 1} | {per_image:.3f} |")
    print("\n| phase of one process | seconds |")
    print("|---|---|")
    for name, seconds in split.items():
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
