"""`nst apply` from the shell: start-up included, beside `python -c "import torch"`, and per image in a folder.

usage: python benchmarks/fast/fast_startup.py [--model starry] [--size 512] [--images 20] [--rounds 3]
       [--before SRC]

Interleaved for `--rounds` rounds, each a fresh process timed from outside (wall clock):
- `python -c "import torch"`: the floor every torch program pays;
- `nst apply MODEL photo.jpg -o out.png`: one photo (examples/content.jpg at `--size` px);
- `nst apply MODEL folder/ -o out/`: `--images` copies of it; per image = (folder - one) / (images - 1),
  the cost of one more image once the process has started.
With `--before SRC` (another checkout's `src/`, e.g. `git archive BASE src | tar -x -C /tmp/before`),
each round runs the two apply commands on that source too, interleaved with this one's (PYTHONPATH
set per command), so a change is measured against its base under the same load.
Then one fresh process split into phases (import torch; import the CLI and nstcli.fast.apply; load the
network; read the photo; the network's pass; write the PNG), to show where the start-up goes.
MODEL is a built-in style's name or a model file; the default is the built-in `starry`, or an
untrained width-16 network when none is installed (the time does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


CPU_SECONDS: dict[str, list[float]] = {}


def wall(command: list[str], source: Path | None = None, key: str | None = None) -> float:
    """The command's wall time; its CPU time (user + system, all threads) goes to CPU_SECONDS[key]."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if key is not None:
        CPU_SECONDS.setdefault(key, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds


def cpu_flags() -> str:
    """What decides bf16 here: AVX-512 BF16 or AMX (native bf16 dot products), else AVX2 only."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "flags unknown"
    named = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in flags]
    return " ".join(named) or "no AVX2"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, help="another checkout's src/ to interleave with this one")
    args = parser.parse_args()
    from fast_apply import cpu_name  # benchmarks/ is on sys.path when run as a script
    from PIL import Image

    print(f"CPU: {cpu_name()} ({cpu_flags()}), os.cpu_count() {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
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
        sources = {"": ROOT / "src"}
        if args.before is not None:
            sources = {"before: ": args.before.resolve(), "after: ": ROOT / "src"}
        times: dict[str, list[float]] = {"import torch": []}
        for label in sources:
            times[f"{label}one photo"], times[f"{label}folder"] = [], []
        for round_ in range(args.rounds):
            times["import torch"].append(wall([sys.executable, "-c", "import torch"], key="import torch"))
            for label, source in sources.items():
                times[f"{label}one photo"].append(wall([*nst, "apply", model, str(photo), "-o",
                                                        str(folder / "out.png"), "--overwrite", "--quiet"], source,
                                                        f"{label}one photo"))
                out = folder / f"out_{round_}_{len(label)}"
                times[f"{label}folder"].append(wall([*nst, "apply", model, str(photos), "-o", str(out), "--quiet"],
                                                    source, f"{label}folder"))
                shutil.rmtree(out)
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        phases = subprocess.run([sys.executable, "-c", PHASES, model, str(photo), str(folder / "phases.png")],
                                check=True, capture_output=True, text=True)
        split = json.loads(phases.stdout.splitlines()[-1])
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"\nmodel {model}, photo {args.size} px, {args.rounds} rounds (medians); CPU: user + system time of "
          "all the process's threads, which other jobs on the machine change far less than the wall time\n")
    print("| measurement | wall s | CPU s |")
    print("|---|---|---|")
    floor, floor_cpu = (statistics.median(found["import torch"]) for found in (times, CPU_SECONDS))
    print(f"| python -c 'import torch' | {floor:.2f} | {floor_cpu:.2f} |")
    for label in sources:
        one, many = (statistics.median(times[f"{label}{key}"]) for key in ("one photo", "folder"))
        one_cpu, many_cpu = (statistics.median(CPU_SECONDS[f"{label}{key}"]) for key in ("one photo", "folder"))
        per = args.images - 1 if args.images > 1 else float("nan")
        print(f"| {label}nst apply MODEL photo.jpg -o out.png | {one:.2f} | {one_cpu:.2f} |")
        print(f"| {label}the same minus import torch | {one - floor:.2f} | {one_cpu - floor_cpu:.2f} |")
        print(f"| {label}nst apply MODEL folder/ ({args.images} images) | {many:.2f} | {many_cpu:.2f} |")
        print(f"| {label}per image in the folder, (folder - one) / {args.images - 1} | {(many - one) / per:.3f} | "
              f"{(many_cpu - one_cpu) / per:.3f} |")
    print("\n| phase of one process | seconds |")
    print("|---|---|")
    for name, seconds in split.items():
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
