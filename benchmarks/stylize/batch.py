"""`nst batch` against a shell loop of `nst stylize` over the same images, measured in one run.

    python benchmarks/stylize/batch.py [--images 6] [--size 64] [--steps 20] [--repeats 1]

Both run as subprocesses with the same flags (`--weights random`, no checkpoints, quiet). The loop
pays for starting Python, importing torch and building the network once per image; the batch pays
for it once. The table shows wall times and their ratio; with --repeats R the two alternate R times
and each figure is the fastest of its R runs (other load on the machine only ever adds time).
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

NST = [sys.executable, "-m", "nstcli"]


def make_image(path: Path, size: int, seed: int) -> None:
    """A seeded picture with edges and colour, so the optimisation has something to do."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size * 3 // 4), (rng.randrange(256), 120, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        box = [x0, y0, x0 + rng.randrange(4, size // 2), y0 + rng.randrange(4, size // 2)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    image.save(path)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    env = {**os.environ, "NST_PYTHON": sys.executable}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    flags = ["--weights", "random", "--size", str(args.size), "--steps", str(args.steps),
             "--checkpoint-every", "0", "--quiet"]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = tmp / "photos"
        photos.mkdir()
        for i in range(args.images):
            make_image(photos / f"img{i:02d}.png", 256, seed=i)
        style = tmp / "style.png"
        make_image(style, 256, seed=1000)

        loop_times, batch_times = [], []
        for repeat in range(args.repeats):
            loop_out, batch_out = tmp / f"loop{repeat}", tmp / f"batch{repeat}"
            loop_out.mkdir()
            # The loop of examples/batch.sh: one `nst stylize` process per file.
            script = ('for f in "$1"/*.png; do n=$(basename "$f" .png); '
                      '"$NST_PYTHON" -m nstcli stylize "$f" "$2" -o "$3/${n}__style.png" '
                      f'{shlex.join(flags)} || exit 1; done')
            loop_times.append(timed(["sh", "-c", script, "sh", str(photos), str(style), str(loop_out)]))
            batch_times.append(timed(NST + ["batch", str(photos), "--style", str(style), "-o", str(batch_out), *flags]))
            for folder in (loop_out, batch_out):
                written = len(list(folder.glob("*.png")))
                if written != args.images:
                    sys.exit(f"{folder.name} wrote {written} of {args.images} images")

    loop, batch = min(loop_times), min(batch_times)
    n = args.images
    print(f"{n} images, {args.size} px, {args.steps} steps, --weights random, {os.cpu_count()} CPUs")
    print(f"{'method':<34}{'total s':>9}{'s / image':>11}")
    print(f"{f'shell loop ({n} x nst stylize)':<34}{loop:>9.1f}{loop / n:>11.2f}")
    print(f"{'nst batch (one process)':<34}{batch:>9.1f}{batch / n:>11.2f}")
    print(f"{'ratio loop / batch':<34}{loop / batch:>9.2f}")
    if n > 1:
        # The loop starts n processes, the batch one: the difference is n - 1 start-ups (Python,
        # torch import, network build, first-call warm-up).
        print(f"{'start-up per extra process, s':<34}{(loop - batch) / (n - 1):>9.2f}")


if __name__ == "__main__":
    main()
