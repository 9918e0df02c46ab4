"""Everything worth knowing about nstcli on one GPU, in a few minutes, as one table.

usage: python benchmarks/runtime/gpu.py [--device cuda] [--weights original]
       python benchmarks/runtime/gpu.py --device cpu --quick          (tiny sizes: what CI runs)

Rows (each timed between device synchronisations, since CUDA kernels run asynchronously and a
clock read without one measures only the launch; peak memory from torch.cuda.max_memory_allocated
after torch.cuda.reset_peak_memory_stats, on the CPU the process's peak resident set):
- stylize s/step at 512, 1024 and 2048 px (one scale, `--steps` steps, the first left out: cuDNN picks
  its algorithms then), fp32 and bf16 (VGG19's bf16 copy; `auto` picks bf16 on compute capability 8
  and up). A scale too large for the GPU's memory runs in tiles, as nst stylize would; the row says so.
- the default run: `nst stylize` at its defaults (512 px, coarse-to-fine), wall time from the call to
  the written file.
- nst train: images/s at its defaults (width 32, batch 4, 256 px crops), fp32 and bf16 autocast.
- nst apply: images/s of a width-16 and a width-32 network at 512 px (512x384) and 1080p.
The whole script is meant to end within 8 minutes on one GPU; it prints its own elapsed time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from nstcli.runtime import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()

import torch  # noqa: E402

from nstcli import api  # noqa: E402
from nstcli.config.fields import load_config  # noqa: E402
from nstcli.reports import Callback  # noqa: E402
from nstcli.optim.run import peak_memory  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "examples" / "content.jpg"
STYLE = ROOT / "examples" / "style.jpg"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> str:
    peak = peak_memory(device)
    return f"{peak / 2**20:.0f}" if peak else "-"


class StepClock(Callback):
    """The time of every step, read after the device has finished it."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: list[float] = []

    def on_step(self, report) -> None:
        synchronize(self.device)
        self.times.append(time.perf_counter())

    def per_step(self) -> float:
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1) if len(self.times) > 1 else float("nan")


def stylize_rows(args, device, folder: Path) -> list[list[str]]:
    rows = []
    for size in args.sizes:
        for precision in ("fp32", "bf16"):
            config = load_config(None, {"weights": args.weights, "device": args.device, "precision": precision,
                                        "size": size, "start_size": None, "steps": args.steps,
                                        "checkpoint_every": 0})
            clock = StepClock(device)
            reset_peak(device)
            result = api.stylize(CONTENT, STYLE, folder / f"step_{size}_{precision}.png", config, callbacks=[clock])
            tiled = [t for t in result.tiling if t]
            what = f"stylize s/step at {size} px" + (" (in tiles)" if tiled else "")
            rows.append([what, result.precision, f"{clock.per_step():.4f}", peak_mib(device)])
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def default_run_row(args, device, folder: Path) -> list[str]:
    keys = {"weights": args.weights, "device": args.device}
    if args.quick:
        keys.update(size=32, steps=2, checkpoint_every=0)
    config = load_config(None, keys)
    reset_peak(device)
    synchronize(device)
    start = time.perf_counter()
    result = api.stylize(CONTENT, STYLE, folder / "default.png", config)
    seconds = time.perf_counter() - start  # the file is written: the device is done
    return [f"nst stylize defaults, {config.size} px, {result.steps} steps (wall s)", result.precision,
            f"{seconds:.2f}", peak_mib(device)]


def train_rows(args, device, folder: Path) -> list[list[str]]:
    from PIL import Image

    from nstcli.fast.train import TrainSettings, train

    photos = folder / "photos"
    photos.mkdir(exist_ok=True)
    with Image.open(CONTENT) as photo:
        for index in range(4):
            photo.crop((index * 20, index * 10, index * 20 + 400, index * 10 + 300)).save(photos / f"{index}.png")
    width, batch, crop = (8, 1, 32) if args.quick else (32, 4, 256)
    rows = []
    for precision in ("fp32", "bf16"):
        config = load_config(None, {"weights": args.weights, "device": args.device, "style_weight": 10})
        settings = TrainSettings(steps=args.train_steps, batch_size=batch, crop_size=crop, width=width,
                                 precision=precision, checkpoint_every=0, preview_every=0)
        clock = StepClock(device)
        reset_peak(device)
        result = train(STYLE, photos, folder / f"net_{precision}.safetensors", config, settings, callbacks=[clock])
        rows.append([f"nst train images/s (width {width}, batch {batch}, {crop} px)", precision,
                     f"{batch / clock.per_step():.2f}", peak_mib(device)])
        print(f"  {rows[-1]} ({result.steps} steps)", file=sys.stderr, flush=True)
    return rows


def apply_rows(args, device) -> list[list[str]]:
    from nstcli.fast.apply import stylize_image
    from nstcli.fast.network import Architecture, TransformNet

    sizes = {"32x48": (32, 48)} if args.quick else {"512 px": (384, 512), "1080p": (1080, 1920)}
    rows = []
    for width in (8,) if args.quick else (16, 32):
        torch.manual_seed(0)
        net = TransformNet(Architecture(width, 5)).to(device).eval().requires_grad_(False)
        for label, shape in sizes.items():
            photo = torch.rand(1, 3, *shape)
            for precision in ("fp32", "bf16"):
                stylize_image(net, photo, precision=precision, device=device)  # warm-up (algorithm choice)
                reset_peak(device)
                synchronize(device)
                start = time.perf_counter()
                for _ in range(args.apply_repeats):
                    stylize_image(net, photo, precision=precision, device=device)  # ends on the CPU: synchronised
                seconds = (time.perf_counter() - start) / args.apply_repeats
                rows.append([f"nst apply images/s (width {width}, {label})", precision, f"{1 / seconds:.2f}",
                             peak_mib(device)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps (a smoke test, e.g. on a CPU)")
    parser.add_argument("--weights", default=None, help="VGG19 weights (default: original; random with --quick)")
    args = parser.parse_args()
    args.weights = args.weights or ("random" if args.quick else "original")
    args.sizes = [32, 64] if args.quick else [512, 1024, 2048]
    args.steps = 3 if args.quick else 12
    args.train_steps = 2 if args.quick else 25
    args.apply_repeats = 1 if args.quick else 10
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu.py: torch sees no CUDA device (use --device cpu --quick for a smoke test)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    capability = ".".join(map(str, torch.cuda.get_device_capability(device))) if device.type == "cuda" else "-"
    print(f"device: {name} (compute capability {capability}), torch {torch.__version__}, weights {args.weights}, "
          f"load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        rows = stylize_rows(args, device, folder)
        rows.append(default_run_row(args, device, folder))
        rows += train_rows(args, device, folder)
        rows += apply_rows(args, device)
    print("\n| measurement | precision | value | peak memory MiB |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nelapsed {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
