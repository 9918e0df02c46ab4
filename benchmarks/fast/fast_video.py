"""`nst video --model`: frames per second at 512 px, and the temporal error against frame by frame.

usage: python benchmarks/fast/fast_video.py [--model MODEL] [--frames 12] [--size 512] [--blend 0.6]

The clip is a pan across the example photo (1.25 px right and 0.4 px down per frame), as in
benchmarks/video/video.py but without its disc.
It runs `nstcli.fast.video.stylize_video` twice on the same frames: with `--blend` 0 (the network
applied frame by frame) and with the default blend along the flow; both compute the flow, so the
frame rates compare what a user gets. Temporal error: the mean over frames 2..n of the squared
difference to the previous output warped by the flow, on reliable pixels (terms/temporal.py). Without
--model an untrained width-16 network is used (the time does not depend on the weights; the error
ratio does, so quote it with a trained model).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from fast_apply import cpu_name  # noqa: E402
import torch  # noqa: E402

from nstcli.fast import modelfile  # noqa: E402
from nstcli.fast.network import Architecture, TransformNet  # noqa: E402
from nstcli.fast.video import DEFAULT_BLEND, stylize_video  # noqa: E402


ROOT = Path(__file__).resolve().parents[2]


def make_clip(folder: Path, frames: int, size: int) -> None:
    """PNG frames of a slow pan across examples/content.jpg, `size` px wide."""
    import math

    from PIL import Image

    width, height = size, (size * 2 // 3) & ~1
    scene = Image.open(ROOT / "examples" / "content.jpg").convert("RGB")
    factor = max((width + 1.25 * frames + 4) / scene.width, (height + 0.4 * frames + 4) / scene.height)
    scene = scene.resize((math.ceil(scene.width * factor), math.ceil(scene.height * factor)), Image.Resampling.LANCZOS)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(frames):
        view = scene.transform((width, height), Image.Transform.AFFINE, (1, 0, 1.25 * index, 0, 1, 0.4 * index),
                               resample=Image.Resampling.BICUBIC)
        view.save(folder / f"frame{index + 1}.png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--blend", type=float, default=DEFAULT_BLEND)
    args = parser.parse_args()
    import os

    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        make_clip(folder / "clip", args.frames, args.size)
        model = args.model
        if model is None:
            torch.manual_seed(0)
            net = TransformNet(Architecture(16, 5))
            model = modelfile.save(folder / "m.safetensors", net.state_dict(),
                                   modelfile.ModelInfo(net.architecture, "untrained"))
        rows = []
        for blend in (0.0, args.blend):
            result = stylize_video(folder / "clip", model, folder / f"out_{int(blend * 100)}/", blend=blend)
            rows.append((blend, result.frames / result.seconds, result.temporal_error))
            print(f"blend {blend}: {rows[-1][1]:.2f} frames/s, temporal error {rows[-1][2]:.5f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"\n| blend | frames/s at {args.size} px | temporal error | error / frame-by-frame |")
    print("|---|---|---|---|")
    for blend, fps, error in rows:
        print(f"| {blend} | {fps:.2f} | {error:.5f} | {error / rows[0][2]:.3f} |")


if __name__ == "__main__":
    main()
