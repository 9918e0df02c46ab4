"""`nst video` against stylising every frame independently, on a generated clip, measured in one run.

    python benchmarks/video.py [--frames 32] [--size 160] [--steps 150] [--frame-steps N] [--weights original]
                               [--temporal-weight X] [--sweep W:S,...] [--sweep-frames 5]
                               [--figure docs/video.png]

The clip: a view panning across examples/content.jpg with a disc cut from examples/style.jpg moving
over it (so there are disocclusions behind it and new content entering at the frame's edge),
written as lossless PNG frames. Both methods use `--weights` (default original, the trained VGG19) and the same config; the
independent method is `nst stylize`'s call (api.stylize: `steps` steps per frame, from the content)
run once per frame, interleaved with `nst video`'s frames (each independent frame runs right after
the video frame of the same index), so both see the same machine load.

Reported, over frames 2..n (frame 1 is the same computation in both):
- temporal error: the mean squared difference between each output frame and the previous output
  frame warped onto it by the *content's* flow, over the reliable pixels (flow.reliable): what a
  viewer sees as flicker;
- per-frame loss: the objective nst stylize minimises (content + style terms) of each output frame,
  evaluated afresh on the final images;
- seconds per frame (all frames, the first included).
`--sweep` then runs `nst video` on the first `--sweep-frames` frames for each temporal weight and
frame-steps pair and reports the same ratios, to choose the fewest frame steps whose per-frame loss
stays within 5% of an independent frame's, and a weight that trades flicker against that loss.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import CONTENT, ROOT, STYLE, machine, table  # noqa: F401  (sets the OpenMP policy first)

import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from nstcli import api  # noqa: E402
from nstcli.video import loop as video  # noqa: E402
from nstcli.video import io as video_io  # noqa: E402
from nstcli.video.reports import FrameReport, VideoCallback  # noqa: E402
from nstcli.config.fields import VIDEO_FRAME_STEPS, VIDEO_TEMPORAL_WEIGHT, Config  # noqa: E402
from nstcli.errors import RandomWeightsWarning  # noqa: E402
from nstcli.video.flow import FlowEstimator  # noqa: E402
from nstcli.image.io import pil_to_tensor, prepare, tensor_to_pil  # noqa: E402
from nstcli.network.load import load_network, min_side  # noqa: E402
from nstcli.terms.objective import content_term  # noqa: E402
from nstcli.stylize.styles import PreparedStyle  # noqa: E402
from nstcli.terms.base import evaluate  # noqa: E402
from nstcli.terms.temporal import temporal_error  # noqa: E402


def make_clip(folder: Path, frames: int, size: int) -> list[Path]:
    """PNG frames of a pan across the content photo with a textured disc crossing it."""
    width, height = size, (size * 2 // 3) & ~1
    scene = Image.open(CONTENT).convert("RGB")
    # The scene is a little larger than the view, enough for a pan of 1.25 px per frame.
    pan = 1.25 * frames
    factor = max((width + pan + 4) / scene.width, (height + 0.4 * frames + 4) / scene.height)
    scene = scene.resize((math.ceil(scene.width * factor), math.ceil(scene.height * factor)), Image.Resampling.LANCZOS)
    radius = height // 5
    texture = Image.open(STYLE).convert("RGB").resize((4 * radius, 4 * radius), Image.Resampling.LANCZOS)
    # An antialiased disc: drawn at 4x and reduced.
    big = Image.new("L", (8 * radius, 8 * radius), 0)
    ImageDraw.Draw(big).ellipse((0, 0, 8 * radius - 1, 8 * radius - 1), fill=255)
    disc = big.resize((2 * radius, 2 * radius), Image.Resampling.LANCZOS).filter(ImageFilter.SMOOTH)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(frames):
        x, y = 1.25 * index, 0.4 * index
        view = scene.transform((width, height), Image.Transform.AFFINE, (1, 0, x, 0, 1, y),
                               resample=Image.Resampling.BICUBIC)
        # The disc crosses the view at 3 px per frame, bobbing up and down, its texture fixed to it.
        cx = round(-radius + (width + 2 * radius) * index / max(1, frames - 1))
        cy = round(height / 2 + height / 6 * math.sin(index / 5))
        view.paste(texture.crop((radius, radius, 3 * radius, 3 * radius)), (cx - radius, cy - radius), disc)
        path = folder / f"frame{index + 1}.png"
        view.save(path)
        paths.append(path)
    return paths


def frame_tensor(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return pil_to_tensor(image.convert("RGB"))


def quantised(image: torch.Tensor) -> torch.Tensor:
    return pil_to_tensor(tensor_to_pil(image))


class Objective:
    """The per-frame loss nst stylize minimises (content + style), of any image at the frame size."""

    def __init__(self, config: Config, style: PreparedStyle):
        self.config = config
        self.device = torch.device("cpu")
        self.network = load_network(config, self.device)
        self.style = style
        self.need = min_side(config)

    @torch.no_grad()
    def __call__(self, content: torch.Tensor, image: torch.Tensor) -> float:
        content = prepare(content, self.device)
        size = max(content.shape[-2:])
        terms = [content_term(self.config, self.network, content),
                 self.style.term(self.config, self.network, round(size * self.config.style_scale), self.need,
                                 self.device)]
        image = prepare(image, self.device)
        total, _ = evaluate(terms, self.network(image), image)
        return float(total)


def temporal_errors(contents: list[torch.Tensor], outputs: list[torch.Tensor]) -> list[float]:
    """Per frame 2..n: the output against the previous output carried along the content's flow."""
    estimator = FlowEstimator()
    errors = []
    for index in range(1, len(outputs)):
        motion = estimator.motion(contents[index - 1], contents[index])
        warped = motion.warp(outputs[index - 1])
        errors.append(float(temporal_error(outputs[index], warped, motion.mask_tensor())))
    return errors


class Interleaved(VideoCallback):
    """Runs the independent stylisation of each frame right after `nst video` finishes that frame."""

    def __init__(self, frames: list[Path], style: PreparedStyle, config: Config):
        self.frames, self.style, self.config = frames, style, config
        self.video_seconds: list[float] = []
        self.independent_seconds: list[float] = []
        self.independent: list[torch.Tensor] = []

    def on_frame(self, report: FrameReport) -> None:
        self.video_seconds.append(report.seconds)
        with Image.open(self.frames[report.index]) as image:
            frame = image.convert("RGB")
        started = time.perf_counter()
        result = api.stylize(frame, self.style, None, self.config)
        self.independent_seconds.append(time.perf_counter() - started)
        self.independent.append(quantised(result.image))
        print(f"frame {report.index + 1}/{report.total}: video {report.seconds:.2f} s, "
              f"independent {self.independent_seconds[-1]:.2f} s", file=sys.stderr)


def read_outputs(folder: Path, count: int) -> list[torch.Tensor]:
    return [frame_tensor(folder / video_io.frame_name(i)) for i in range(count)]


def keep_frames(folder: Path, frames: list[torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        tensor_to_pil(frame).save(folder / f"frame{index + 1}.png")


def write_figure(path: Path, contents, independent, videos, first: int, count: int) -> None:
    """Rows: content, independent frames, their flicker, nst video's frames, and theirs.

    Flicker is shown as |frame - previous frame warped onto it by the content's flow| (x4): motion
    the flow explains is taken out, so what remains bright is texture redrawn from one frame to
    the next (pixels the flow cannot vouch for, such as those uncovered behind the disc, are
    included, as a viewer sees them).
    """
    from nstcli.image.sheets import labelled_sheet

    estimator = FlowEstimator()
    motions = {index: estimator.motion(contents[index - 1], contents[index]) for index in range(first, first + count)}

    def flicker(sequence, index):
        warped = motions[index].warp(sequence[index - 1])
        return tensor_to_pil(((sequence[index] - warped).abs() * 4).clamp(0, 1))

    frames, labels = [], []
    for name, sequence in (("content", contents), ("independent", independent), ("nst video", videos)):
        for index in range(first, first + count):
            frames.append(tensor_to_pil(sequence[index]))
            labels.append(f"{name} {index + 1}")
        if name != "content":
            for index in range(first, first + count):
                frames.append(flicker(sequence, index))
                labels.append(f"change {index} > {index + 1} x4")
    sheet = labelled_sheet(frames, labels, columns=count)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--steps", type=int, default=150, help="steps per independent frame (and video frame 1)")
    parser.add_argument("--frame-steps", type=int, default=VIDEO_FRAME_STEPS)
    parser.add_argument("--temporal-weight", type=float, default=VIDEO_TEMPORAL_WEIGHT)
    parser.add_argument("--sweep", default="0:50,0.1:50,1:50,0.1:20,1:20",
                        help="temporal-weight:frame-steps pairs (or frame-steps alone) to try; empty for none")
    parser.add_argument("--sweep-frames", type=int, default=5)
    parser.add_argument("--weights", default="original",
                        help="VGG19 weights (random: the untrained network, for speed figures only)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the independent, nst video and sweep frames into this folder, to look at")
    parser.add_argument("--figure", type=Path, default=None, help="write the strip of frames here (PNG)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RandomWeightsWarning)
    config = Config(weights=args.weights, size=args.size, steps=args.steps, checkpoint_every=0)
    print(f"# {machine()}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = make_clip(tmp / "clip", args.frames, args.size)
        contents = [frame_tensor(path) for path in frames]
        style = PreparedStyle([STYLE])
        watch = Interleaved(frames, style, config)
        result = video.stylize_video(tmp / "clip", [STYLE], tmp / "video", config, frame_steps=args.frame_steps,
                                     temporal_weight=args.temporal_weight, callbacks=[watch])
        videos = read_outputs(tmp / "video", result.frames)
        objective = Objective(config, style)
        losses = {name: [objective(contents[i], outputs[i]) for i in range(1, len(frames))]
                  for name, outputs in (("independent", watch.independent), ("video", videos))}
        errors = {"independent": temporal_errors(contents, watch.independent), "video": temporal_errors(contents, videos)}
        seconds = {"independent": watch.independent_seconds, "video": watch.video_seconds}

        def mean(values):
            return statistics.fmean(values)

        height, width = contents[0].shape[-2:]
        print(f"\n{args.frames} frames of {width}x{height}, --weights {args.weights}, {args.steps} steps per independent "
              f"frame, nst video --frame-steps {args.frame_steps} --temporal-weight {args.temporal_weight:g}\n")
        rows = []
        for name in ("independent", "video"):
            rows.append([name if name == "independent" else "nst video", mean(errors[name]),
                         mean(errors[name]) / mean(errors["independent"]), mean(seconds[name]),
                         mean(seconds[name]) / mean(seconds["independent"]), mean(losses[name]),
                         mean(losses[name]) / mean(losses["independent"])])
        print(table(["method", "temporal error", "ratio", "s / frame", "ratio", "loss / frame", "ratio"], rows))
        print("\ntargets: temporal error ratio <= 0.333, time ratio <= 0.6, loss ratio <= 1.05")

        if args.keep is not None:
            keep_frames(args.keep / "independent", watch.independent)
            keep_frames(args.keep / "video", videos)

        if args.figure is not None:
            first = min(max(1, args.frames // 2), max(1, args.frames - 4))
            write_figure(args.figure, contents, watch.independent, videos, first, min(4, args.frames - first))

        # "W:S" is temporal weight W with S frame steps; a bare "S" keeps --temporal-weight.
        sweep = [(float(item.split(":")[0]), int(item.split(":")[1])) if ":" in item
                 else (args.temporal_weight, int(item)) for item in args.sweep.split(",") if item.strip()]
        if sweep:
            count = min(args.sweep_frames, args.frames)
            part = tmp / "part"
            part.mkdir()
            for path in frames[:count]:
                shutil.copy(path, part / path.name)
            base_loss = mean(losses["independent"][: count - 1])
            base_error = mean(errors["independent"][: count - 1])
            base_seconds = mean(seconds["independent"][1:count])
            rows, chosen = [], None
            for number, (weight, steps) in enumerate(sweep):
                run = video.stylize_video(part, [STYLE], tmp / f"sweep{number}", config, frame_steps=steps,
                                          temporal_weight=weight)
                outputs = read_outputs(tmp / f"sweep{number}", count)
                if args.keep is not None:
                    keep_frames(args.keep / f"sweep_w{weight:g}_s{steps}", outputs)
                loss = mean([objective(contents[i], outputs[i]) for i in range(1, count)])
                error = mean(temporal_errors(contents[:count], outputs))
                per_frame = mean([row["seconds"] for row in run.frame_log[1:]])
                rows.append([f"{weight:g}", steps, error / base_error, loss / base_loss, per_frame / base_seconds])
                if loss / base_loss <= 1.05 and (chosen is None or steps < chosen[1]):
                    chosen = (weight, steps)
            print(f"\nfirst {count} frames, frames 2..{count} (ratios to the independent frames above; "
                  "time ratios not interleaved)\n")
            print(table(["temporal weight", "frame-steps", "temporal error ratio", "loss ratio", "time ratio"], rows))
            print(f"\nfewest frame-steps within 5% of an independent frame's loss (weight, steps): {chosen}")

if __name__ == "__main__":
    main()
