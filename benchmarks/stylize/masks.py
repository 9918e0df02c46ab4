"""Spatial control: does each half of the output carry its own style, and is there a seam?

    python benchmarks/stylize/masks.py [--size 128] [--steps 200] [--weights original] [--figure docs/masks.png]

Two very different styles (the bundled blue and yellow swirls, and red and black diagonal stripes
made here) are painted on the bundled photo with a left/right mask pair: the swirls on the left, the
stripes on the right, once with a hard edge and once with a soft one (a ramp an eighth of the width
wide). The trained original VGG19 (`--weights original`, nstcli's default); `--weights random` gives the
untrained seeded network the first figures were made with.

For each half of the result (leaving out a band of an eighth of the width either side of the
boundary, where the styles mix by design), the half is run through the network on its own and its
Gram matrices at the style layers are compared with each style's:
d(half, style) = sum over style layers of 1/4 mean (G - A)^2, the style loss itself. The table gives
d(half, other style) / d(half, own style): how many times closer the half is to its own style.
The photo itself is the baseline row: its colours are nearer the swirls than the stripes, so the
layout is run both ways round (swirls left, then stripes left), and each half must move to the
style its mask gives it whichever one the photo started closer to.

Seam: the mean absolute difference between neighbouring columns at the boundary (the 4 column pairs
around it), over the median of the same at every column. About 1 means the boundary is no sharper
than the texture elsewhere; a visible seam is a ratio well above the texture's own spread.

Step cost: the fastest of `--rounds` interleaved forward + backward passes with the two styles
blended in one unmasked term, and with one guided term per half.

The figure (docs/masks.png): the two styles, the soft mask, and the soft-mask result (swirls left).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import CONTENT, STYLE  # noqa: E402

from nstcli import api  # noqa: E402
from nstcli.config.fields import Config  # noqa: E402
from nstcli.image.io import open_image, pil_to_tensor, resize_longest, save_image, tensor_to_pil  # noqa: E402
from nstcli.stylize.masks import SpatialControl  # noqa: E402
from nstcli.stylize.single_plan import load_network_for as load_network  # noqa: E402
from nstcli.terms.gram import gram_matrix  # noqa: E402
from nstcli.errors import RandomWeightsWarning  # noqa: E402


def stripes(path: Path, size: int) -> Path:
    """Red and black diagonal stripes, 6 px apart: nothing like the swirls in colour or scale."""
    image = Image.new("RGB", (size, size))
    pixels = image.load()
    for y in range(size):
        for x in range(size):
            pixels[x, y] = (220, 30, 20) if ((x + y) // 3) % 2 else (10, 10, 10)
    image.save(path)
    return path


def half_masks(folder: Path, width: int, height: int, ramp: int) -> tuple[Path, Path]:
    """left/right masks summing to 1 everywhere; `ramp` px wide soft edge (0: hard)."""
    left = Image.new("L", (width, height))
    for x in range(width):
        if ramp:
            value = min(1.0, max(0.0, (width / 2 + ramp / 2 - x - 0.5) / ramp))
        else:
            value = 1.0 if x < width // 2 else 0.0
        left.paste(round(255 * value), (x, 0, x + 1, height))
    paths = folder / f"left_{ramp}.png", folder / f"right_{ramp}.png"
    left.save(paths[0])
    left.point(lambda v: 255 - v).save(paths[1])
    return paths


def style_distance(network, layers, image: torch.Tensor, targets: dict) -> float:
    features = network(image)
    return sum(0.25 * torch.mean((gram_matrix(features[n]) - targets[n]) ** 2).item() for n in layers)


def seam_ratio(image: torch.Tensor) -> float:
    columns = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=(0, 1, 2))  # one value per column pair
    middle = image.shape[-1] // 2
    return (columns[middle - 2: middle + 2].mean() / columns.median()).item()


def step_cost(network, config, content: torch.Tensor, styles, masks, rounds: int) -> tuple[float, float]:
    """Fastest forward + backward of one step with one unmasked style, and with the two masked ones,
    interleaved round by round so both see the same machine load."""
    from nstcli.terms.objective import features_of, style_layer_weights
    from nstcli.terms.settings import LossSettings
    from nstcli.terms.gram import GramStyle
    from nstcli.terms.guided import GuidedGramStyle, guided_targets

    weights = style_layer_weights(config.pick(LossSettings))
    features = [features_of(network, style) for style in styles]
    plain = [GramStyle.from_features(features, [0.5, 0.5], weights, config.style_weight)]
    guided = [GuidedGramStyle(guided_targets(f, config.style_layers, None), m, weights, config.style_weight)
              for f, m in zip(features, masks)]
    best = {"plain": float("inf"), "guided": float("inf")}
    for _ in range(rounds):
        for name, terms in (("plain", plain), ("guided", guided)):
            image = content.clone().requires_grad_(True)
            started = time.perf_counter()
            out = network(image)
            sum(term(out, image) for term in terms).backward()
            best[name] = min(best[name], time.perf_counter() - started)
    return best["plain"], best["guided"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "masks.png")
    parser.add_argument("--work", type=Path, default=Path("masks_work"))
    parser.add_argument("--weights", default="original", help="VGG19 weights (default: the trained original)")
    parser.add_argument("--rounds", type=int, default=10, help="timing rounds of the step-cost comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RandomWeightsWarning)  # only with --weights random
    args.work.mkdir(parents=True, exist_ok=True)

    config = Config(weights=args.weights, size=args.size, steps=args.steps, start_size=None, checkpoint_every=0)
    content = resize_longest(open_image(CONTENT), args.size)
    content_path = args.work / "content.png"
    content.save(content_path)
    width, height = content.size
    styles = [STYLE, stripes(args.work / "stripes.png", args.size)]
    names = ["swirls", "stripes"]
    network = load_network(config, torch.device("cpu"))
    layers = config.style_layers
    targets = []
    with torch.no_grad():
        for path in styles:
            image = pil_to_tensor(resize_longest(open_image(path), args.size))
            features = network(image)
            targets.append({n: gram_matrix(features[n]) for n in layers})

    band = width // 8
    columns = {"left": slice(0, width // 2 - band), "right": slice(width // 2 + band, width)}
    print(f"{width}x{height} px, {args.steps} L-BFGS steps, --weights {args.weights}. Ratio: a half's distance to the "
          "other style over its distance to its own (at least 3x wanted); seam: boundary over median column step")
    print()
    print("| left / right style | image | left half: other / own | right half: other / own | seam |")
    print("|---|---|---|---|---|")
    figure_masks, figure_result = None, None
    for order in ((0, 1), (1, 0)):
        arrangement = f"{names[order[0]]} / {names[order[1]]}"
        results = {"photo (no style)": pil_to_tensor(content)}
        for label, ramp in (("hard edge", 0), ("soft edge", max(2, width // 8))):
            left, right = half_masks(args.work, width, height, ramp)
            control = SpatialControl([left, right])
            result = api.stylize(content_path, [styles[i] for i in order], config=config, masks=control)
            results[label] = result.image
            if order == (0, 1) and ramp:
                figure_masks, figure_result = left, result.image
        with torch.no_grad():
            for label, image in results.items():
                cells = []
                for side, own in zip(("left", "right"), order):
                    crop = image[..., :, columns[side]].contiguous()
                    d = [style_distance(network, layers, crop, t) for t in targets]
                    cells.append(f"{d[1 - own] / d[own]:.1f}x")
                print(f"| {arrangement} | {label} | {cells[0]} | {cells[1]} | {seam_ratio(image):.2f} |")

    content_tensor = pil_to_tensor(content).contiguous(memory_format=torch.channels_last)
    style_tensors = [pil_to_tensor(resize_longest(open_image(path), args.size)).contiguous(
        memory_format=torch.channels_last) for path in styles]
    hard = torch.zeros(height, width)
    hard[:, : width // 2] = 1.0
    plain, guided = step_cost(network, config, content_tensor, style_tensors, [hard, 1 - hard], args.rounds)
    print()
    print("| step (forward + backward) | fastest of rounds, s | ratio |")
    print("|---|---|---|")
    print(f"| one unmasked style (two blended) | {plain:.3f} | 1.00 |")
    print(f"| two masked styles, one per half | {guided:.3f} | {guided / plain:.2f} |")

    # The figure: styles, the soft mask, the soft result, all at the result's height.
    def fit(picture: Image.Image) -> Image.Image:
        return picture.resize((round(picture.width * height / picture.height), height), Image.Resampling.LANCZOS)

    panels = [("style: left", fit(open_image(styles[0]))), ("style: right", fit(open_image(styles[1]))),
              ("mask (left style)", Image.open(figure_masks).convert("RGB")),
              ("result", tensor_to_pil(figure_result))]
    gap, caption = 4, 14
    sheet = Image.new("RGB", (sum(p.width for _, p in panels) + gap * (len(panels) - 1), height + caption), "white")
    draw, x = ImageDraw.Draw(sheet), 0
    for text, panel in panels:
        sheet.paste(panel, (x, caption))
        draw.text((x + 2, 1), text, fill="black")
        x += panel.width + gap
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    save_image(pil_to_tensor(sheet), args.figure)
    print()
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
