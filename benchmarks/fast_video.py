"""`nst video --model`: frames per second at 512 px, and the temporal error against frame by frame.

usage: python benchmarks/fast_video.py [--model MODEL] [--frames 12] [--size 512] [--blend 0.6]

The clip is benchmarks/video.py's (a pan across the example photo with a textured disc crossing it).
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

from video import make_clip  # benchmarks/video.py

from fast_apply import cpu_name  # noqa: E402
import torch  # noqa: E402

from nstcli.fast import modelfile  # noqa: E402
from nstcli.fast.network import Architecture, TransformNet  # noqa: E402
from nstcli.fast.video import DEFAULT_BLEND, stylize_video  # noqa: E402


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
            result = stylize_video(folder / "clip", model, folder / f"out_{blend}", blend=blend)
            rows.append((blend, result.frames / result.seconds, result.temporal_error))
            print(f"blend {blend}: {rows[-1][1]:.2f} frames/s, temporal error {rows[-1][2]:.5f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"\n| blend | frames/s at {args.size} px | temporal error | error / frame-by-frame |")
    print("|---|---|---|---|")
    for blend, fps, error in rows:
        print(f"| {blend} | {fps:.2f} | {error:.5f} | {error / rows[0][2]:.3f} |")


if __name__ == "__main__":
    main()
