"""Large outputs: time, peak memory, the judge, and a figure of the whole image with 100 % crops.

    python benchmarks/stylize/large_outputs.py CONTENT STYLE --size 3620 [--args "--config large --max-memory 5GB"]
        [--out FOLDER] [--reference IMAGE] [--crops X,Y X,Y] [--crop-size 512] [--figure FILE]

Runs `nst stylize CONTENT STYLE --size SIZE ARGS` as its own process (as a user would), and prints a
Markdown table: wall time, the process's peak resident memory (from the kernel's accounting of the
child, so it includes everything torch allocated), and the judge's content and style errors
(../shared/tools/judge.py, at its 384 px). With `--reference` (another tool's output of the same
pair), that image is judged too and put beside ours in the figure, resized to our output's size.

The figure shows, per image, the whole picture shrunk to --width and, under it, crops of
--crop-size px at 100 % (no resampling) at the given fractions of the width and height: strokes are
judged there, not in the thumbnail. An existing output is reused (delete it to run again).
The pair used in benchmarks/README.md ("Large outputs") is jcjohnson/neural-style's
`examples/inputs/hoovertowernight.jpg` and `starry_night_google.jpg`.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
from common import judge_errors

ROOT = Path(__file__).resolve().parents[2]


def run(content: str, style: str, out: Path, size: int, extra: list[str]) -> tuple[float, float]:
    """(seconds, peak resident memory in GB) of one `nst stylize` process."""
    nst = shutil.which("nst") or str(Path(sys.executable).with_name("nst"))
    command = [nst, "stylize", content, style, "-o", str(out), "--size", str(size), "--quiet", *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # the written path: not part of the table
    seconds = time.perf_counter() - start
    # ru_maxrss of the children: the largest resident set of any child waited for, in kB on Linux.
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6


def panel(image: Image.Image, label: str, width: int, crops: list[tuple[float, float]], side: int) -> Image.Image:
    """The whole image shrunk to `width`, boxes where the crops are, and the crops at 100 % below."""
    scale = width / image.width
    thumb = image.resize((width, round(image.height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(thumb)
    boxes = []
    for fx, fy in crops:
        left = min(max(0, round(fx * image.width - side / 2)), max(0, image.width - side))
        top = min(max(0, round(fy * image.height - side / 2)), max(0, image.height - side))
        boxes.append((left, top, left + side, top + side))
        draw.rectangle([round(v * scale) for v in boxes[-1]], outline="red", width=2)
    pieces = [image.crop(box) for box in boxes]
    height = 20 + thumb.height + (side + 10 if pieces else 0)
    canvas = Image.new("RGB", (max(width, len(pieces) * (side + 10)), height), "white")
    ImageDraw.Draw(canvas).text((4, 4), label, fill="black")
    canvas.paste(thumb, (0, 20))
    for index, piece in enumerate(pieces):
        canvas.paste(piece, (index * (side + 10), 30 + thumb.height))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--args", default="", help="more nst stylize options, as one string")
    parser.add_argument("--out", type=Path, default=Path("large-out"))
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--crops", nargs="*", default=["0.35,0.2", "0.55,0.75"], metavar="FX,FY")
    parser.add_argument("--crop-size", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--figure", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"nst_{args.size}.png"
    seconds = memory = float("nan")
    if not out.exists():
        seconds, memory = run(args.content, args.style, out, args.size, shlex.split(args.args))
    images = [out] + ([args.reference] if args.reference else [])
    scores = judge_errors(args.content, args.style, images)
    print("| output | size | time s | peak memory GB | judge content | judge style |")
    print("| --- | --- | --- | --- | --- | --- |")
    ours = Image.open(out).convert("RGB")
    for path, (content_error, style_error) in zip(images, scores):
        image = Image.open(path)
        timing = f"{seconds:.0f} | {memory:.2f}" if path == out else "- | -"
        print(f"| {path.name} | {image.width}x{image.height} | {timing} | {content_error:.3f} | {style_error:.3f} |")
    if args.figure:
        crops = [tuple(float(v) for v in item.split(",")) for item in args.crops]
        side = min(args.crop_size, ours.width, ours.height)
        panels = [panel(ours, f"nst stylize --size {args.size} {args.args}".strip(), args.width, crops, side)]
        if args.reference:
            reference = Image.open(args.reference).convert("RGB").resize(ours.size, Image.Resampling.LANCZOS)
            panels.append(panel(reference, f"{args.reference.name} (resized to {ours.width} px)", args.width,
                                crops, side))
        figure = Image.new("RGB", (sum(p.width for p in panels) + 10 * (len(panels) - 1),
                                   max(p.height for p in panels)), "white")
        left = 0
        for piece in panels:
            figure.paste(piece, (left, 0))
            left += piece.width + 10
        figure.save(args.figure, quality=90)  # quality: for a .jpg figure (PNG ignores it)


if __name__ == "__main__":
    main()
