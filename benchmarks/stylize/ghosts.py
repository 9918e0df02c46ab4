"""The face/figure panel: do styles with faces or figures paint their objects into the result?

    python benchmarks/stylize/ghosts.py --inputs DIR [--download] [--size 512] [--out FOLDER] [--pairs a,b,...]
        [--variant NAME key=value ...] ... [--figure docs/ghosts.png]

Each pair is a photo and a painting from jcjohnson/neural-style's `examples/inputs/` (commit
07c4b82); where that repository publishes its own output of the pair (`examples/outputs/`, 512 px,
its defaults), it is judged beside ours. DIR holds `inputs/` and `outputs/` as in that repository;
with `--download` the files are fetched from GitHub into DIR first (the paintings and photos there
carry no licence of their own, so they are used here for measuring and never committed).

Every pair runs under each variant (`--variant NAME key=value ...`, config keys as in YAML; the
default variants are `before`, every style layer weighted alike with style weight 30, the defaults
until relu5_1 was damped, and `defaults`, nstcli's defaults now), through `api.stylize` on the original VGG19, and is judged by ../shared/tools/judge.py
(content and style errors on layers no recipe optimises). The table gives both errors per pair and
variant; the judge cannot see a face painted into a river, so every output must also be looked at:
the outputs are written to FOLDER as PAIR_VARIANT.png, and a sheet per pair as PAIR_sheet.png (the
style, jcjohnson's output where there is one, then each variant).

`--figure FILE` writes a figure from the pairs whose every input may be redistributed (public-domain
paintings, CC0 photos: see `FIGURE_PAIRS`), one row per pair: photo, painting, each variant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
from common import judge_errors

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b82/examples/"

# name: (content, style, jcjohnson's output or None). The styles: Kahlo's self-portrait, Matisse's
# Woman with a Hat, Munch's Scream, Picasso's Seated Nude and 1907 self-portrait, Escher's sphere
# (a hand and a face), then landscapes without figures (Starry Night, Turner's Shipwreck) to check
# that the fix costs nothing where there was nothing to fix.
PAIRS = {
    "golden_gate-kahlo": ("golden_gate.jpg", "frida_kahlo.jpg", "golden_gate_kahlo.png"),
    "golden_gate-matisse": ("golden_gate.jpg", "woman-with-hat-matisse.jpg", "golden_gate_matisse.png"),
    "golden_gate-scream": ("golden_gate.jpg", "the_scream.jpg", "golden_gate_scream.png"),
    "golden_gate-seated": ("golden_gate.jpg", "seated-nude.jpg", "golden_gate_seated.png"),
    "golden_gate-escher": ("golden_gate.jpg", "escher_sphere.jpg", "golden_gate_escher.png"),
    "tubingen-scream": ("tubingen.jpg", "the_scream.jpg", "tubingen_scream.png"),
    "tubingen-seated": ("tubingen.jpg", "seated-nude.jpg", "tubingen_seated_nude.png"),
    "hoover-kahlo": ("hoovertowernight.jpg", "frida_kahlo.jpg", None),
    "tubingen-picasso": ("tubingen.jpg", "picasso_selfport1907.jpg", None),
    "golden_gate-starry": ("golden_gate.jpg", "starry_night.jpg", "golden_gate_starry.png"),
    "tubingen-shipwreck": ("tubingen.jpg", "shipwreck.jpg", "tubingen_shipwreck.png"),
    # The project's own CC0 pair (examples/): needs no download, for a quick check of the script.
    "examples": (ROOT / "examples" / "content.jpg", ROOT / "examples" / "style.jpg", None),
}
# Pairs whose inputs may be redistributed: the project's own CC0 photo (examples/content.jpg,
# scikit-image's chelsea) with paintings in the public domain (Munch died 1944; Matisse's 1905
# painting, published before 1929, is in the public domain in the US, and in the EU since 2025).
FIGURE_PAIRS = {
    "cat-scream": (ROOT / "examples" / "content.jpg", "the_scream.jpg"),
    "cat-matisse": (ROOT / "examples" / "content.jpg", "woman-with-hat-matisse.jpg"),
}
VARIANTS = {
    # nstcli's defaults before the fifth block was damped: every style layer alike, style weight 30
    "before": {"style_layer_weights": [1, 1, 1, 1, 1], "style_weight": 30},
    "defaults": {},
}


def download(folder: Path) -> None:
    names = {("inputs", name) for c, s, _ in PAIRS.values() for name in (c, s) if isinstance(name, str)}
    names |= {("outputs", o) for _, _, o in PAIRS.values() if o}
    for kind, name in sorted(names):
        target = folder / kind / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(SOURCE + f"{kind}/{name}", timeout=60) as response:
                target.write_bytes(response.read())


def stylize(content: Path, style: Path, out: Path, base: dict, overrides: dict) -> float:
    from nstcli import api
    from nstcli.config.fields import load_config

    config = load_config(None, {**base, "checkpoint_every": 0, **overrides})
    start = time.perf_counter()
    api.stylize(content, [style], out, config)
    return time.perf_counter() - start


def sheet(images: list[Image.Image], labels: list[str], height: int = 256) -> Image.Image:
    from nstcli.image.sheets import labelled_sheet

    scaled = [image.convert("RGB").resize((max(1, round(image.width * height / image.height)), height),
                                          Image.Resampling.LANCZOS) for image in images]
    return labelled_sheet(scaled, labels, columns=len(scaled))


def parse_variants(items: list[list[str]] | None) -> dict[str, dict]:
    if not items:
        return VARIANTS
    import yaml

    variants = {}
    for name, *settings in items:
        variants[name] = {key: yaml.safe_load(value) for key, value in (s.split("=", 1) for s in settings)}
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("ghosts-out"))
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--variant", nargs="+", action="append", metavar="NAME KEY=VALUE")
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--steps", type=int, help="steps per scale instead of the defaults' (quick checks)")
    parser.add_argument("--weights", default="original")
    args = parser.parse_args()
    args.base = {"size": args.size, "weights": args.weights, **({"steps": args.steps} if args.steps else {})}
    if args.download:
        download(args.inputs)
    variants = parse_variants(args.variant)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    pairs = {name: PAIRS[name] for name in args.pairs.split(",") if name}
    for name, (content_name, style_name, reference) in pairs.items():
        content, style = (args.inputs / "inputs" / name if isinstance(name, str) else name
                          for name in (content_name, style_name))
        outputs, labels = [], []
        if reference:
            outputs.append(args.inputs / "outputs" / reference)
            labels.append("jcjohnson")
        for variant, overrides in variants.items():
            out = args.out / f"{name}_{variant}.png"
            seconds = stylize(content, style, out, args.base, overrides) if not out.exists() else float("nan")
            outputs.append(out)
            labels.append(f"{variant} ({seconds:.0f} s)")
        for label, (c, s) in zip(labels, judge_errors(content, style, outputs)):
            rows.append((name, label, c, s))
            print(f"{name}: {label}: content {c:.3f}, style {s:.3f}", file=sys.stderr, flush=True)
        sheet([Image.open(style), *map(Image.open, outputs)], ["style", *labels]).save(args.out / f"{name}_sheet.png")
    print("| pair | output | judge content | judge style |\n| --- | --- | --- | --- |")
    for name, label, c, s in rows:
        print(f"| {name} | {label} | {c:.3f} | {s:.3f} |")
    if args.figure:
        figure(args, variants)
    (args.out / "table.json").write_text(json.dumps(rows, indent=1))


def figure(args, variants: dict[str, dict]) -> None:
    """Rows of photo, painting and each variant, from inputs that may be redistributed."""
    rows = []
    for name, (content, style_name) in FIGURE_PAIRS.items():
        style = args.inputs / "inputs" / style_name
        images = [Image.open(content), Image.open(style)]
        for variant, overrides in variants.items():
            out = args.out / f"{name}_{variant}.png"
            if not out.exists():
                stylize(content, style, out, args.base, overrides)
            images.append(Image.open(out))
        rows.append(sheet(images, ["photo", "painting", *variants], height=200))
    width = max(row.width for row in rows)
    canvas = Image.new("RGB", (width, sum(row.height for row in rows)), "white")
    top = 0
    for row in rows:
        canvas.paste(row, (0, top))
        top += row.height
    canvas.save(args.figure)


if __name__ == "__main__":
    main()
