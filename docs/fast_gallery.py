"""Write docs/fast_styles.jpg and its section of docs/fast.md: every built-in style on the same photos.

    python docs/fast_gallery.py PHOTO PHOTO [--size 384]

The photos are two the networks never saw in training: scikit-image's `chelsea` (examples/content.jpg)
and `coffee` (`skimage/data/coffee.png` of the scikit-image 0.26.0 wheel; CC0, Rachel Michetti).
Each built-in style (`nst styles`) is applied by the library at `--size` px, as `nst apply` does; the
sheet has one row per style, the photos first, and is labelled with each style's painting. The section
of docs/fast.md between the two markers below is rewritten with the table of styles beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))

from PIL import Image, ImageDraw  # noqa: E402

from nstcli.fast import apply, builtin, modelfile  # noqa: E402
from nstcli.image.io import load_image, tensor_to_pil  # noqa: E402

SHEET = DOCS / "fast_styles.jpg"
PAGE = DOCS / "fast.md"
BEGIN = "<!-- built-in styles: written by docs/fast_gallery.py -->"
END = "<!-- end built-in styles -->"
HEIGHT = 256
GAP = 8
LABEL = 20


def sheet(photos: list[Path], size: int) -> Image.Image:
    rows = [("photo (not in training)", [load_image(photo, size) for photo in photos], None)]
    for style in builtin.available():
        net, _ = apply.load_model(style.name)
        rows.append((f"{style.name}: {style.describe()}", None, net))
    width = None
    drawn = []
    for label, images, net in rows:
        if images is None:
            images = [apply.stylize_image(net, photo) for photo in rows[0][1]]
        pictures = [tensor_to_pil(image) for image in images]
        pictures = [p.resize((round(p.width * HEIGHT / p.height), HEIGHT), Image.Resampling.LANCZOS) for p in pictures]
        drawn.append((label, pictures))
        width = max(width or 0, sum(p.width for p in pictures) + GAP * (len(pictures) + 1))
    page = Image.new("RGB", (width, len(drawn) * (HEIGHT + LABEL + GAP) + GAP), "white")
    draw = ImageDraw.Draw(page)
    y = GAP
    for label, pictures in drawn:
        draw.text((GAP, y + 4), label, fill="black")
        x = GAP
        for picture in pictures:
            page.paste(picture, (x, y + LABEL))
            x += picture.width + GAP
        y += HEIGHT + LABEL + GAP
    return page


def section(size: int) -> str:
    lines = [BEGIN, "", "| name | painting (public domain) | width | upsampling | trained |", "|---|---|---|---|---|"]
    for style in builtin.available():
        info, _ = modelfile.read_header(style.path)
        training = info.training
        trained = (f"{training.get('steps')} steps, {training.get('crop_size')} px crops, batch "
                   f"{training.get('batch_size')}, style at {training.get('style_size')} px, "
                   f"{training.get('images')} photos")
        lines.append(f"| `{style.name}` | {style.artist}, *{style.painting}*, {style.year} | "
                     f"{info.architecture.width} | {info.architecture.upsample} | {trained} |")
    lines += ["", f"![every built-in style on the same two photos, at {size} px](fast_styles.jpg)", "",
              f"*`python docs/fast_gallery.py examples/content.jpg coffee.png --size {size}`: scikit-image's "
              "`chelsea` and `coffee`, neither among the networks' training photos, then one row per "
              "built-in style.*", "", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--size", type=int, default=384)
    args = parser.parse_args()
    sheet(args.photos, args.size).save(SHEET, quality=90)
    text = PAGE.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{PAGE} has no '{BEGIN}' ... '{END}' section to rewrite")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    PAGE.write_text(text[:start] + section(args.size) + text[end:])
    print(f"wrote {SHEET} and the built-in styles section of {PAGE}")


if __name__ == "__main__":
    main()
