"""How close content reconstructions come to the input, layer by layer (the seed's first figure).

    python benchmarks/stylize/reconstruction_psnr.py [--size 128] [--steps 300] [--weights random]

Starts from white noise and optimises only the content loss at one layer (as
`nst reconstruct content IMAGE --layer L`), then prints the PSNR of the result against the input.
With an untrained network the shallow layers keep almost everything; deeper ones keep less.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from nstcli.image.io import open_image, pil_to_tensor, resize_longest  # noqa: E402
from nstcli import api
from nstcli.config.fields import Config
from nstcli.stylize.reconstruct import FIGURE_LAYERS, psnr

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(ROOT / "examples" / "content.jpg"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--weights", default="random")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    config = Config(weights=args.weights, size=args.size, steps=args.steps, checkpoint_every=0)
    target = pil_to_tensor(resize_longest(open_image(args.image), args.size))
    print(f"{args.image}, {args.size} px, {args.steps} L-BFGS steps from noise, weights {args.weights}\n")
    print("| layer | PSNR (dB) |")
    print("| --- | --- |")
    for layer in FIGURE_LAYERS:
        result = api.reconstruct("content", args.image, layers=[layer], config=config)
        print(f"| {layer} | {psnr(result.image, target):.1f} |")


if __name__ == "__main__":
    main()
