"""How strong a regular grid is in an image: the cross-hatch a network's up- or downsampling leaves.

usage: python benchmarks/fast/fast_grid.py IMAGE [IMAGE ...]

A network with two stride-2 stages computes even and odd pixels (and the four phases of the stride-4
grid) differently; a texture tied to those phases shows in the image's spectrum as sharp peaks at
periods of 2 and 4 px. For each period the figure is the power at that frequency (the mean of the
three bins around it, along rows and along columns, the larger taken) over the median power of the
ring of bins around it: 1 to 6 for the photos here (chelsea, coffee), over 30 where a grid is
visible at 100 %.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

PERIODS = (2, 4)


def grid_strength(path) -> dict[int, float]:
    """{period in px: peak power / the surrounding frequencies' median} of the image's luminance."""
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255
    height, width = (side - side % 8 for side in gray.shape)
    gray = gray[:height, :width] - gray[:height, :width].mean()
    power = np.abs(np.fft.fft2(gray * np.outer(np.hanning(height), np.hanning(width)))) ** 2

    def peak(y: int, x: int) -> float:
        ring = [power[(y + dy) % height, (x + dx) % width] for dy in range(-4, 5) for dx in range(-4, 5)
                if max(abs(dy), abs(dx)) >= 3]
        return power[y, x] / max(float(np.median(ring)), 1e-20)

    found = {}
    for period in PERIODS:
        across = np.mean([peak(dy, width // period) for dy in (-1, 0, 1)])  # vertical lines
        down = np.mean([peak(height // period, dx) for dx in (-1, 0, 1)])  # horizontal lines
        found[period] = float(max(across, down))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    print("| image | " + " | ".join(f"period {p} px" for p in PERIODS) + " |")
    print("|---|" + "---|" * len(PERIODS))
    for path in args.images:
        strength = grid_strength(path)
        print(f"| {path} | " + " | ".join(f"{strength[p]:.1f}" for p in PERIODS) + " |")


if __name__ == "__main__":
    main()
