"""The neighbours panel: `--config neighbours` beside nstcli's defaults, pair by pair, with the judge.

    python benchmarks/stylize/neighbours.py --inputs DIR [--download] [--size 384] [--out FOLDER]
        [--pairs a,b,...] [--variants defaults,neighbours] [--memory-check]

Eight pairs of jcjohnson/neural-style's `examples/inputs/` (commit 07c4b82: portraits and figures as
styles and as contents, landscapes, towns) and one of NNST's own inputs (nkolkin13/NeuralNeighborStyleTransfer,
`inputs/style/S8.jpg`, a cubist painting, as the abstract one), plus NNST's published example, its
`inputs/content/C1.png` x `inputs/style/S4.jpg`, beside the output it publishes in `example.png` (the
middle panel of that figure, cropped here). DIR holds `inputs/`, `outputs/` and `nnst/`; with
`--download` the files are fetched from GitHub into DIR first. None of them carries a licence that lets
the project redistribute it: they are used for measuring and never committed.

Each pair runs under each variant through `api.stylize` on the original VGG19 and is judged by
../shared/tools/judge.py (content and style errors on layers no recipe optimises). The judge's style
error compares Gram matrices, the statistic the defaults optimise and the neighbour term does not: it
favours the Gram recipe by construction, so the table is a check on the eye, not the verdict. Outputs
go to FOLDER as PAIR_VARIANT.png, with a sheet per pair (style, each variant); seconds and peak memory
(the process's peak resident set, as `--json`'s peak_memory_mb) are printed per run.

`--memory-check` instead runs `--config neighbours` at 512 px and at 1024 px on one pair and prints
each run's peak memory, or the one-line refusal a run that would not fit gets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
from common import ROOT, judge_errors

JCJOHNSON = "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b82/examples/"
NNST = "https://raw.githubusercontent.com/nkolkin13/NeuralNeighborStyleTransfer/main/"

# name: (content, style), each "inputs/NAME" (jcjohnson's) or "nnst/NAME" (NNST's).
PAIRS = {
    "pitt-picasso": ("inputs/brad_pitt.jpg", "inputs/picasso_selfport1907.jpg"),  # portrait x portrait
    "pitt-starry": ("inputs/brad_pitt.jpg", "inputs/starry_night.jpg"),  # portrait x landscape
    "goldengate-kahlo": ("inputs/golden_gate.jpg", "inputs/frida_kahlo.jpg"),  # landscape x portrait
    "tubingen-scream": ("inputs/tubingen.jpg", "inputs/the_scream.jpg"),  # town x figure
    "hoover-seated": ("inputs/hoovertowernight.jpg", "inputs/seated-nude.jpg"),  # town at night x figure
    "goldengate-shipwreck": ("inputs/golden_gate.jpg", "inputs/shipwreck.jpg"),  # landscape x seascape
    "tubingen-matisse": ("inputs/tubingen.jpg", "inputs/woman-with-hat-matisse.jpg"),  # town x portrait
    "goldengate-cubist": ("inputs/golden_gate.jpg", "nnst/S8.jpg"),  # landscape x abstract
    "nnst-c1s4": ("nnst/C1.png", "nnst/S4.jpg"),  # NNST's own example pair
    # The project's own CC0 pair (examples/): needs no download, for a quick check of the script.
    "examples": (ROOT / "examples" / "content.jpg", ROOT / "examples" / "style.jpg"),
}
VARIANTS = {"defaults": {}, "neighbours": {"config": "neighbours"}}
NNST_FILES = ("inputs/content/C1.png", "inputs/style/S4.jpg", "inputs/style/S8.jpg", "example.png", "example2.png")


def download(folder: Path) -> None:
    for content, style in PAIRS.values():
        for name in (content, style):
            if not isinstance(name, str):
                continue
            kind = name.split("/")[0]
            if kind == "inputs" and not (folder / name).exists():
                fetch(JCJOHNSON + name, folder / name)
    for name in NNST_FILES:
        if not (folder / "nnst" / Path(name).name).exists():
            fetch(NNST + name, folder / "nnst" / Path(name).name)


def fetch(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            target.write_bytes(response.read())
    except OSError as exc:  # unreachable: the pairs that need it are skipped
        print(f"neighbours: could not fetch {url}: {exc}", file=sys.stderr)


def nnst_output(folder: Path) -> Path | None:
    """NNST's published output of C1 x S4: the middle of the three panels of example.png (no labels)."""
    figure = folder / "nnst" / "example.png"
    if not figure.exists():
        return None
    image = Image.open(figure).convert("RGB")
    # The figure is content | output | style side by side above a row of captions; the output panel
    # is square (C1 is square) and starts a little right of a third of the width.
    width, height = image.size
    side = round(height * 0.87)
    left = round(width * 0.342)
    out = folder / "nnst" / "example_output.png"
    image.crop((left, 0, left + side, side)).save(out)
    return out


def run(content: Path, style: Path, out: Path, size: int, variant: dict, extra: str = "") -> dict:
    """One `nst stylize` in its own process (so peak_memory_mb is this run's alone); its --json summary."""
    command = [sys.executable, "-m", "nstcli", "stylize", str(content), str(style), "-o", str(out), "--size",
               str(size), "--checkpoint-every", "0", "--quiet", "--json", *extra.split()]
    if "config" in variant:
        command += ["--config", variant["config"]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else str(done.returncode)}
    return json.loads(done.stdout)


def sheet(images: list[Image.Image], labels: list[str], height: int = 256) -> Image.Image:
    from nstcli.image.sheets import labelled_sheet

    scaled = [image.convert("RGB").resize((max(1, round(image.width * height / image.height)), height),
                                          Image.Resampling.LANCZOS) for image in images]
    return labelled_sheet(scaled, labels, columns=len(scaled))


def memory_check(folder: Path, out: Path, extra: str = "") -> None:
    content, style = (folder / name for name in PAIRS["tubingen-scream"])
    for size in (512, 1024):
        summary = run(content, style, out / f"memory_{size}.png", size, VARIANTS["neighbours"], extra)
        print(f"{size} px: " + (summary["error"] if "error" in summary else
                                f"peak {summary['peak_memory_mb']} MB, {summary['seconds']:.0f} s, "
                                f"tiling {summary['tiling']}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--out", type=Path, default=Path("neighbours-out"))
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--memory-check", action="store_true")
    parser.add_argument("--args", default="", help="more stylize flags for every run (quick checks)")
    args = parser.parse_args()
    if args.download:
        download(args.inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.memory_check:
        memory_check(args.inputs, args.out, args.args)
        return
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    rows = []
    for name in args.pairs.split(","):
        content, style = (args.inputs / part for part in PAIRS[name])
        if not (content.exists() and style.exists()):
            print(f"neighbours: {name} skipped (inputs missing; --download fetches them)", file=sys.stderr)
            continue
        outputs, labels = [], []
        if name == "nnst-c1s4" and (published := nnst_output(args.inputs)) is not None:
            outputs.append(published)
            labels.append("NNST (published)")
            rows.append((name, "NNST (published)", None, None))
        for variant, settings in variants.items():
            out = args.out / f"{name}_{variant}.png"
            start = time.perf_counter()
            summary = run(content, style, out, args.size, settings, args.args) if not out.exists() else {}
            if "error" in summary:
                print(f"{name}: {variant}: {summary['error']}", file=sys.stderr)
                continue
            outputs.append(out)
            labels.append(variant)
            rows.append((name, variant, summary.get("seconds", time.perf_counter() - start),
                         summary.get("peak_memory_mb")))
        errors = judge_errors(content, style, outputs)
        rows[-len(outputs):] = [row + error for row, error in zip(rows[-len(outputs):], errors)]
        sheet([Image.open(style), *map(Image.open, outputs)], ["style", *labels]).save(args.out / f"{name}_sheet.png")
    print("| pair | output | seconds | peak MB | judge content | judge style |\n| --- | --- | --- | --- | --- | --- |")
    for name, label, seconds, peak, c, s in rows:
        shown = f"{seconds:.0f}" if seconds else "-"
        print(f"| {name} | {label} | {shown} | {peak or '-'} | {c:.3f} | {s:.3f} |")
    (args.out / "table.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
