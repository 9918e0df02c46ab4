"""`nst video` against stylising every frame independently, on a generated clip, measured in one run.

    python benchmarks/video/video.py [--clip disc|walker] [--frames 32] [--size 160] [--steps 150] [--frame-steps N]
                               [--weights original] [--temporal-weight X] [--before] [--sweep W:S,...]
                               [--sweep-frames 5] [--judge judge.py] [--keep DIR] [--figure docs/video.png]

The clips (lossless PNG frames, each with a moving object on a moving background):
- disc: a view panning across examples/content.jpg with a disc cut from examples/style.jpg crossing
  it (disocclusions behind it, new content entering at the frame's edge); the disc crosses the whole
  view during the clip, so the fewer the frames the faster it moves;
- walker: a person (an oval cut-out of examples/astronaut.jpg) walking across a view of the launch
  pad of examples/rocket.jpg towards the camera, growing and bobbing, while the view pans and
  closes in (both photos from scikit-image, public domain: examples/SOURCES.md).
Both methods use `--weights` (default original, the trained VGG19) and the same config; the
independent method is `nst stylize`'s call (api.stylize: `steps` steps per frame, from the content)
run once per frame, interleaved with `nst video`'s frames (each independent frame runs right after
the video frame of the same index), so both see the same machine load. `--before` also runs
`nst video` as it was before the colour test (flow.mismatched) and the mixed start image
(video.start_image), after the main run.

Reported, over frames 2..n (frame 1 is the same computation in all):
- temporal error: the mean squared difference between each output frame and the previous output
  frame warped onto it by the *content's* flow, over the pixels that pass the forward-backward test
  (flow.reliable; the measure of the earlier figures): what a viewer sees as flicker;
- per-frame loss: the objective nst stylize minimises (content + style terms) of each output frame,
  evaluated afresh on the final images;
- seconds per frame (all frames, the first included);
- the mover's style error: the judge's (`--judge`, ../shared/tools/judge.py) on a crop around the
  moving object, in every frame where at least 3/4 of it is in view.
`--sweep` then runs `nst video` on the first `--sweep-frames` frames for each temporal weight and
frame-steps pair and reports the same ratios, to choose the fewest frame steps whose per-frame loss
stays within 5% of an independent frame's, and a weight that trades flicker against that loss.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import subprocess
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
from common import CONTENT, ROOT, STYLE, machine, table  # noqa: F401  (sets the OpenMP policy first)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from nstcli import api  # noqa: E402
from nstcli.video import flow  # noqa: E402
from nstcli.video.formats import frame_name  # noqa: E402
from nstcli.video import loop as video  # noqa: E402
from nstcli.video.reports import FrameReport, VideoCallback  # noqa: E402
from nstcli.config.commands import VideoSettings  # noqa: E402
from nstcli.config.fields import Config  # noqa: E402
from nstcli.errors import RandomWeightsWarning  # noqa: E402
from nstcli.video.flow import FlowEstimator  # noqa: E402
from nstcli.image.io import pil_to_tensor, prepare, tensor_to_pil  # noqa: E402
from nstcli.network.load import layers_needed, min_side  # noqa: E402
from nstcli.stylize.single_plan import load_network_for as load_network  # noqa: E402
from nstcli.terms.builder import content_term  # noqa: E402
from nstcli.terms.settings import LossSettings  # noqa: E402
from nstcli.stylize.styles import PreparedStyle  # noqa: E402
from nstcli.terms.base import evaluate  # noqa: E402
from nstcli.terms.temporal import temporal_error  # noqa: E402

JUDGE = ROOT.parent / "shared" / "tools" / "judge.py"


PERSON = ROOT / "examples" / "astronaut.jpg"
LAUNCH_PAD = ROOT / "examples" / "rocket.jpg"


def view_size(size: int) -> tuple[int, int]:
    return size, (size * 2 // 3) & ~1


def disc_clip(folder: Path, frames: int, size: int) -> tuple[list[Path], list[tuple[int, int, int, int]]]:
    """PNG frames of a pan across the content photo with a textured disc crossing it, and the disc's
    box (left, top, right, bottom) in each frame."""
    width, height = view_size(size)
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
    paths, boxes = [], []
    for index in range(frames):
        x, y = 1.25 * index, 0.4 * index
        view = scene.transform((width, height), Image.Transform.AFFINE, (1, 0, x, 0, 1, y),
                               resample=Image.Resampling.BICUBIC)
        # The disc crosses the view during the clip, bobbing up and down, its texture fixed to it.
        cx = round(-radius + (width + 2 * radius) * index / max(1, frames - 1))
        cy = round(height / 2 + height / 6 * math.sin(index / 5))
        view.paste(texture.crop((radius, radius, 3 * radius, 3 * radius)), (cx - radius, cy - radius), disc)
        path = folder / f"frame{index + 1}.png"
        view.save(path)
        paths.append(path)
        boxes.append((cx - radius, cy - radius, cx + radius, cy + radius))
    return paths, boxes


def walker_clip(folder: Path, frames: int, size: int) -> tuple[list[Path], list[tuple[int, int, int, int]]]:
    """PNG frames of a person crossing a launch pad towards the camera, and the person's box.

    Both are photos the project ships (examples/SOURCES.md): an oval cut-out of the astronaut
    portrait walks from right to left over 60% of the view, growing from 0.55 to 0.8 of its height
    and bobbing with each step, while the view of the launch pad pans and closes in by 8%.
    """
    width, height = view_size(size)
    scene = Image.open(LAUNCH_PAD).convert("RGB")
    person = Image.open(PERSON).convert("RGB").crop((28, 6, 196, 256))
    big = Image.new("L", (person.width * 4, person.height * 4), 0)
    ImageDraw.Draw(big).ellipse((0, 0, big.width - 1, big.height + big.height // 3), fill=255)
    oval = big.resize(person.size, Image.Resampling.LANCZOS).filter(ImageFilter.SMOOTH)
    folder.mkdir(parents=True, exist_ok=True)
    paths, boxes = [], []
    for index in range(frames):
        t = index / max(1, frames - 1)
        zoom = 1 + 0.08 * t
        view_w = scene.width / zoom
        view_h = view_w * height / width
        left, top = (scene.width - view_w) * (0.3 + 0.4 * t), (scene.height - view_h) / 2
        view = scene.transform((width, height), Image.Transform.EXTENT, (left, top, left + view_w, top + view_h),
                               resample=Image.Resampling.BICUBIC)
        h = round(height * (0.55 + 0.25 * t))
        w = round(h * person.width / person.height)
        x = round(width * (0.8 - 0.6 * t)) - w // 2
        y = height - h + round(2 * math.sin(index * 2.2))
        view.paste(person.resize((w, h), Image.Resampling.LANCZOS), (x, y), oval.resize((w, h), Image.Resampling.LANCZOS))
        path = folder / f"frame{index + 1}.png"
        view.save(path)
        paths.append(path)
        boxes.append((x, y, x + w, y + h))
    return paths, boxes


CLIPS = {"disc": disc_clip, "walker": walker_clip}


def make_clip(folder: Path, frames: int, size: int) -> list[Path]:
    """The disc clip's frames (what earlier versions of this script called make_clip)."""
    return disc_clip(folder, frames, size)[0]


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
        self.need = min_side(layers_needed(config))

    @torch.no_grad()
    def __call__(self, content: torch.Tensor, image: torch.Tensor) -> float:
        content = prepare(content, self.device)
        size = max(content.shape[-2:])
        loss = self.config.pick(LossSettings)
        terms = [content_term(loss, self.network, content),
                 self.style.term(loss, self.network, round(size * self.config.style_scale), self.need,
                                 self.device)]
        image = prepare(image, self.device)
        total, _ = evaluate(terms, self.network(image), image)
        return float(total)


def temporal_errors(contents: list[torch.Tensor], outputs: list[torch.Tensor]) -> list[float]:
    """Per frame 2..n: the output against the previous output carried along the content's flow, over
    the pixels Ruder et al.'s forward-backward test keeps (`Motion.consistent`; on code that predates
    the colour test, `Motion.mask` is that same mask): the flicker measure of every earlier figure."""
    estimator = FlowEstimator()
    errors = []
    for index in range(1, len(outputs)):
        motion = estimator.motion(contents[index - 1], contents[index])
        warped = motion.warp(outputs[index - 1])
        kept = getattr(motion, "consistent", None)
        kept = motion.mask if kept is None else kept
        mask = torch.from_numpy(kept.astype("float32"))[None, None]
        errors.append(float(temporal_error(outputs[index], warped, mask)))
    return errors


@contextlib.contextmanager
def before_the_colour_test():
    """`nst video` as it was before the colour test: the mask is the forward-backward test alone and
    every later frame starts from the warped previous result everywhere."""
    saved = flow.mismatched, video.start_image
    flow.mismatched = lambda previous, current, backward: np.zeros(backward.shape[:2], bool)
    video.start_image = lambda warped, mask, own_start: warped
    try:
        yield
    finally:
        flow.mismatched, video.start_image = saved


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


class Seconds(VideoCallback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_frame(self, report: FrameReport) -> None:
        self.seconds.append(report.seconds)


def read_outputs(folder: Path, count: int) -> list[torch.Tensor]:
    return [frame_tensor(folder / frame_name(i)) for i in range(count)]


def keep_frames(folder: Path, frames: list[torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        tensor_to_pil(frame).save(folder / f"frame{index + 1}.png")


def crop_box(box, width: int, height: int, margin: int):
    """The mover's box widened by `margin` and clipped to the frame, or None when less than 3/4 of
    the mover is in view (a sliver at the edge says little about how it is painted)."""
    left, top, right, bottom = box
    inside = (min(right, width) - max(left, 0)) * (min(bottom, height) - max(top, 0))
    if min(right, width) <= max(left, 0) or min(bottom, height) <= max(top, 0) or \
            inside < 0.75 * (right - left) * (bottom - top):
        return None
    return (max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin))


def judge_crops(script: Path, folder: Path, contents, methods: dict[str, list[torch.Tensor]], boxes,
                size: int) -> tuple[dict[str, list[float]], list[int]]:
    """The judge's style error of each method's crop around the mover, per frame where it is in view."""
    height, width = contents[0].shape[-2:]
    errors: dict[str, list[float]] = {name: [] for name in methods}
    judged = []
    folder.mkdir(parents=True, exist_ok=True)
    for index, box in enumerate(boxes):
        box = crop_box(box, width, height, margin=4)
        if box is None:
            continue
        judged.append(index)
        content = folder / f"content{index + 1}.png"
        tensor_to_pil(contents[index]).crop(box).save(content)
        outputs = []
        for name, frames in methods.items():
            outputs.append(folder / f"{name.replace(' ', '_')}{index + 1}.png")
            tensor_to_pil(frames[index]).crop(box).save(outputs[-1])
        done = subprocess.run([sys.executable, str(script), str(content), str(STYLE), *map(str, outputs),
                               "--size", str(size)], capture_output=True, text=True, check=True)
        rows = [line.split() for line in done.stdout.splitlines()[1:] if line.strip()]
        for name, row in zip(methods, rows):
            errors[name].append(float(row[-1]))
    return errors, judged


def mask_picture(motion) -> Image.Image:
    """White: reliable; grey: passes the forward-backward test but the colours do not match; black: fails it."""
    mask = np.where(motion.mask, 255, np.where(motion.consistent, 128, 0)).astype(np.uint8)
    return Image.fromarray(mask).convert("RGB")


def write_figure(path: Path, contents, methods: dict[str, list[torch.Tensor]], first: int, count: int) -> None:
    """Rows: content, each method's frames, and the masks of the reliable pixels."""
    from nstcli.image.sheets import labelled_sheet

    estimator = FlowEstimator()
    frames, labels = [], []
    for name, sequence in (("content", contents), *methods.items()):
        for index in range(first, first + count):
            frames.append(tensor_to_pil(sequence[index]))
            labels.append(f"{name} {index + 1}")
    for index in range(first, first + count):
        if index == 0:
            frames.append(Image.new("RGB", frames[0].size, "white"))
            labels.append("")
            continue
        frames.append(mask_picture(estimator.motion(contents[index - 1], contents[index])))
        labels.append(f"mask {index + 1}")
    sheet = labelled_sheet(frames, labels, columns=count)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def mask_seconds(contents: list[torch.Tensor], rounds: int = 5) -> tuple[float, float]:
    """Seconds per frame pair of the flows and the mask, without and with the colour test,
    interleaved: the only work the colour test adds to a frame besides one blend of two images."""
    estimator = FlowEstimator()
    totals = [0.0, 0.0]
    for _ in range(rounds):
        for variant in (0, 1):
            context = before_the_colour_test() if variant == 0 else contextlib.nullcontext()
            with context:
                started = time.perf_counter()
                for index in range(1, len(contents)):
                    estimator.motion(contents[index - 1], contents[index])
                totals[variant] += time.perf_counter() - started
    pairs = rounds * max(1, len(contents) - 1)
    return totals[0] / pairs, totals[1] / pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", choices=sorted(CLIPS), default="disc")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--steps", type=int, default=150, help="steps per independent frame (and video frame 1)")
    parser.add_argument("--frame-steps", type=int, default=VideoSettings.frame_steps)
    parser.add_argument("--temporal-weight", type=float, default=VideoSettings.temporal_weight)
    parser.add_argument("--before", action="store_true",
                        help="also run nst video as it was before the colour test (forward-backward mask only, "
                             "start from the warped previous result everywhere), after the main run")
    parser.add_argument("--sweep", default="0:50,0.1:50,1:50,0.1:20,1:20",
                        help="temporal-weight:frame-steps pairs (or frame-steps alone) to try; empty for none")
    parser.add_argument("--sweep-frames", type=int, default=5)
    parser.add_argument("--weights", default="original",
                        help="VGG19 weights (random: the untrained network, for speed figures only)")
    parser.add_argument("--judge", type=Path, default=JUDGE,
                        help="judge.py: the style error of a crop around the moving object (skipped if absent)")
    parser.add_argument("--judge-size", type=int, default=96, help="the crops' longest side for the judge")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the independent, nst video and sweep frames into this folder, to look at")
    parser.add_argument("--figure", type=Path, default=None, help="write the strip of frames here (PNG)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RandomWeightsWarning)
    config = Config(weights=args.weights, size=args.size, steps=args.steps, checkpoint_every=0)
    print(f"# {machine()}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames, boxes = CLIPS[args.clip](tmp / "clip", args.frames, args.size)
        contents = [frame_tensor(path) for path in frames]
        style = PreparedStyle([STYLE])
        watch = Interleaved(frames, style, config)
        result = video.stylize_video(tmp / "clip", [STYLE], tmp / "video", config,
                                     VideoSettings(frame_steps=args.frame_steps, temporal_weight=args.temporal_weight),
                                     callbacks=[watch])
        methods = {"independent": watch.independent, "nst video": read_outputs(tmp / "video", result.frames)}
        seconds = {"independent": watch.independent_seconds, "nst video": watch.video_seconds}
        if args.before:
            clock = Seconds()
            with before_the_colour_test():
                video.stylize_video(tmp / "clip", [STYLE], tmp / "before", config,
                                    VideoSettings(frame_steps=args.frame_steps, temporal_weight=args.temporal_weight),
                                    callbacks=[clock])
            methods = {"independent": methods["independent"], "before": read_outputs(tmp / "before", result.frames),
                       "nst video": methods["nst video"]}
            seconds["before"] = clock.seconds
        objective = Objective(config, style)
        losses = {name: [objective(contents[i], outputs[i]) for i in range(1, len(frames))]
                  for name, outputs in methods.items()}
        errors = {name: temporal_errors(contents, outputs) for name, outputs in methods.items()}
        crops, judged = ({}, []) if not args.judge.exists() else \
            judge_crops(args.judge, tmp / "crops", contents, methods, boxes, args.judge_size)

        def mean(values):
            return statistics.fmean(values) if values else float("nan")

        height, width = contents[0].shape[-2:]
        print(f"\n{args.clip} clip: {args.frames} frames of {width}x{height}, --weights {args.weights}, {args.steps} "
              f"steps per independent frame, nst video --frame-steps {args.frame_steps} --temporal-weight "
              f"{args.temporal_weight:g}\n")
        rows = []
        for name in methods:
            rows.append([name, mean(errors[name]), mean(errors[name]) / mean(errors["independent"]),
                         mean(seconds[name]), mean(seconds[name]) / mean(seconds["independent"]),
                         mean(losses[name]), mean(losses[name]) / mean(losses["independent"]),
                         mean(crops.get(name, [])), mean(crops.get(name, [])) / mean(crops.get("independent", []))])
        print(table(["method", "temporal error", "ratio", "s / frame", "ratio", "loss / frame", "ratio",
                     "mover's style error", "ratio"], rows))
        if judged:
            print(f"\nmover's style error: the judge's, on crops around the moving object in frames "
                  f"{', '.join(str(i + 1) for i in judged)} at --size {args.judge_size}")
        else:
            print(f"\n(no judge at {args.judge}, or the object is never in view: crops not judged)")
        if args.before:
            print(f"\ntime per frame nst video / before: {mean(seconds['nst video']) / mean(seconds['before']):.3f} "
                  "(not interleaved: the two runs one after the other)")
            without, with_colour = mask_seconds(contents)
            print(f"flows and mask per frame, interleaved: {without * 1e3:.1f} ms before, {with_colour * 1e3:.1f} ms "
                  f"with the colour test; mean nst video frame {mean(seconds['nst video']) * 1e3:.0f} ms")
        print("\ntargets: temporal error ratio <= 0.333, mover's style error ratio <= 1.3")

        if args.keep is not None:
            for name, outputs in methods.items():
                keep_frames(args.keep / name.replace(" ", "_"), outputs)

        if args.figure is not None:
            first = 1 if args.frames <= 6 else min(max(1, args.frames // 2), max(1, args.frames - 4))
            write_figure(args.figure, contents, {k: v for k, v in methods.items()}, first,
                         min(5, args.frames - first))

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
                run = video.stylize_video(part, [STYLE], tmp / f"sweep{number}", config,
                                          VideoSettings(frame_steps=steps, temporal_weight=weight))
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
