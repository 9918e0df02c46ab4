"""Tiled optimisation: peak memory at large sizes, step cost, seams and loss against untiled runs.

Every run is `nstcli.api.stylize` on the bundled examples (content 3:2), in a fresh child process that
reports its own peak resident set size (ru_maxrss) when it ends. memory, speed and calibrate use
--weights random (the untrained network costs the same per step); quality uses --weights (default
original, the trained VGG19), since its losses and seams depend on what the network sees.

    python benchmarks/tiling/tiles.py memory --size 4096 --steps 1 --start-size 1024 --max-memory 4GB
    python benchmarks/tiling/tiles.py memory --size 8192 --steps 1 --start-size none --max-memory 6GB
    python benchmarks/tiling/tiles.py speed --size 2048 --steps 3 --max-memory 4GB
    python benchmarks/tiling/tiles.py quality --size 1024 --steps 10 --tile 384 [--weights original]
    python benchmarks/tiling/tiles.py calibrate --sizes 256,512,768

memory: coarse-to-fine (from --start-size, doubling), `--steps` steps per scale; prints the peak
  RSS, which scales were tiled and with which tile, and the estimate the budget was checked against.
speed: one scale at --size from the content image, Adam, untiled then tiled then untiled again
  (interleaved, so load on the machine hits both); seconds per step per megapixel, from the time
  between step reports (the targets, computed once per scale, are left out of both).
quality: one scale at --size, Adam, untiled and tiled (--tile) for the same steps; both final images
  scored with the same untiled objective; then the seams: the mean absolute difference between
  neighbouring pixels across the last step's tile boundaries over that of every other pixel pair, in
  the tiled run's final image.
calibrate: peak RSS of a bare Adam step at several square sizes, against memory.py's estimate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common

BENCHMARKS = Path(__file__).resolve().parents[1]  # where common.py is

CHILD = r"""
import json, resource, sys, time, warnings
sys.path.insert(0, {here!r})
warnings.simplefilter("ignore")
import common
import torch
from nstcli.stylize import single  # noqa: E402
from nstcli import api
from nstcli.network import memory
from nstcli.config.fields import load_config
from nstcli.reports import Callback

class Clock(Callback):
    def __init__(self):
        self.times = []
    def on_step(self, report):
        self.times.append((report.scale, time.perf_counter(), report.size, report.loss))

options = json.loads({options!r})
save = options.pop("save", None)
config = load_config(None, {{"weights": "random", "checkpoint_every": 0, **options}})
clock = Clock()
result = api.stylize(common.CONTENT, common.STYLE, save, config=config, callbacks=[clock])
last = max(scale for scale, _, _, _ in clock.times)
times = [t for scale, t, _, _ in clock.times if scale == last]
height, width = result.image.shape[-2:]
per_step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
print(json.dumps({{"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "tiling": result.summary()["tiling"], "scales": result.summary()["scales"],
                  "seconds_per_step_per_mpx": per_step / (height * width / 1e6) if per_step else None,
                  "loss": result.losses.get("loss"), "seconds": result.seconds}}))
"""

SCORE = r"""
import json, sys
sys.path.insert(0, {here!r})
import common, torch
from nstcli import api
from nstcli.config.fields import Config
from nstcli.image.io import load_image, open_image, pil_to_tensor, prepare, resize_longest
from nstcli.stylize.single_plan import load_network_for as load_network
from common import standard_terms
from nstcli.terms.objective import features_of
from nstcli.terms.settings import LossSettings
from nstcli.terms.base import evaluate
config = Config(**{{"weights": "random", **json.loads({options!r})}})
net = load_network(config, torch.device("cpu"))
content = prepare(pil_to_tensor(resize_longest(open_image(common.CONTENT), config.size)), torch.device("cpu"))
style = prepare(pil_to_tensor(resize_longest(open_image(common.STYLE), config.size)), torch.device("cpu"))
terms = standard_terms(config.pick(LossSettings), net, content, [style])
out = {{}}
for path in {paths!r}:
    image = prepare(load_image(path), torch.device("cpu"))
    with torch.no_grad():
        total, parts = evaluate(terms, net(image), image)
    out[path] = {{"loss": float(total), **{{k: float(v) for k, v in parts.items()}}}}
print(json.dumps(out))
"""

CALIBRATE = r"""
import json, resource, sys, torch
sys.path.insert(0, {here!r})
from nstcli import api
from nstcli.network import memory
from nstcli.config.fields import Config
from nstcli.optim.engine import optimize as optimise
from nstcli.network.load import layers_needed
from nstcli.stylize.single_plan import load_network_for as load_network
from nstcli.optim.run import RunSettings
from common import standard_terms
from nstcli.terms.settings import LossSettings
size = {size}
config = Config(weights="random", optimizer="adam")
net = load_network(config, torch.device("cpu"))
if size:
    image = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    optimise(net, image, standard_terms(config.pick(LossSettings), net, image, [image]),
             config.pick(RunSettings).optimizer_settings, steps=2)
need = memory.untiled_need((size, size), (size, size), layers_needed(config), config.content_layers, "adam", 2)
print(json.dumps({{"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "estimate": need.total}}))
"""


def child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def stylize(**options) -> dict:
    return child(CHILD.format(here=str(BENCHMARKS), options=json.dumps(options)))


def gb(kb: float) -> float:
    return kb * 1024 / 1e9


def memory_run(args) -> None:
    from nstcli.network import memory
    from nstcli.config.fields import load_config
    from nstcli.network.load import layers_needed

    options = dict(size=args.size, steps=args.steps, start_size=args.start_size)
    if args.max_memory:
        options["max_memory"] = args.max_memory
    run = stylize(**options)
    config = load_config(None, options)
    height, width = run["scales"][-1]
    untiled = memory.untiled_need((height, width), (height, width), layers_needed(config), config.content_layers,
                                  config.optimizer, args.steps).total
    tiled = [(f"{w}x{h}", t["tile"], "x".join(map(str, t["grid"])))
             for (h, w), t in zip(run["scales"], run["tiling"]) if t]
    print(common.table(["size", "steps/scale", "--max-memory", "peak RSS GB", "tiled scales (tile, grid)",
                        "untiled estimate GB", "seconds"],
                       [[f"{width}x{height}", args.steps, args.max_memory or "free", gb(run["maxrss_kb"]),
                         "; ".join(f"{s} ({t} px, {g})" for s, t, g in tiled) or "none", untiled / 1e9,
                         run["seconds"]]]))


def speed(args) -> None:
    base = dict(size=args.size, steps=args.steps, start_size=None, optimizer="adam")
    rows = []
    for label, extra in [("untiled", {"tile": 0}), ("tiled", {"max_memory": args.max_memory}),
                         ("untiled", {"tile": 0}), ("tiled", {"max_memory": args.max_memory})][: args.rounds * 2]:
        run = stylize(**base, **extra)
        tile = run["tiling"][-1]
        rows.append([label, f"{tile['tile']} px, {tile['grid'][0]}x{tile['grid'][1]}" if tile else "-",
                     run["seconds_per_step_per_mpx"], gb(run["maxrss_kb"])])
        print(f"  {label} done", file=sys.stderr, flush=True)
    untiled = [r[2] for r in rows if r[0] == "untiled"]
    tiled = [r[2] for r in rows if r[0] == "tiled"]
    print(common.table(["run", "tile", "s per step per Mpx", "peak RSS GB"], rows))
    print(f"\ntiled / untiled time per pixel per step: {sum(tiled) / sum(untiled):.3f}")


def seams(path: str, shape, tile: int, steps: int, align: int) -> tuple[float, float]:
    """(mean |difference| across the last step's tile boundaries, mean over all other neighbours)."""
    import torch

    from nstcli.tiling import grid
    from nstcli.image.io import load_image

    image = load_image(path)[0]
    height, width = shape
    pieces = grid.layout((height, width), tile, align, steps - 1)
    rows = sorted({p.own[0] for p in pieces} - {0})
    cols = sorted({p.own[2] for p in pieces} - {0})
    dy = (image[:, 1:, :] - image[:, :-1, :]).abs().mean(dim=(0, 2))  # dy[k]: between rows k and k+1
    dx = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(dim=(0, 1))
    border = torch.cat([dy[[r - 1 for r in rows]], dx[[c - 1 for c in cols]]])
    keep_y = torch.ones_like(dy, dtype=torch.bool)
    keep_y[[r - 1 for r in rows]] = False
    keep_x = torch.ones_like(dx, dtype=torch.bool)
    keep_x[[c - 1 for c in cols]] = False
    interior = torch.cat([dy[keep_y], dx[keep_x]])
    return float(border.mean()), float(interior.mean())


def quality(args) -> None:
    base = dict(size=args.size, steps=args.steps, start_size=None, optimizer="adam", weights=args.weights)
    with tempfile.TemporaryDirectory() as folder:
        paths = [str(Path(folder) / "untiled.png"), str(Path(folder) / "tiled.png")]
        stylize(**base, tile=0, save=paths[0])
        tiled = stylize(**base, tile=args.tile, save=paths[1])
        scores = child(SCORE.format(here=str(BENCHMARKS), options=json.dumps(dict(size=args.size, weights=args.weights)),
                                   paths=paths))
        height, width = tiled["scales"][-1]
        border, interior = seams(paths[1], (height, width), args.tile, args.steps, 16)
        border0, interior0 = seams(paths[0], (height, width), args.tile, args.steps, 16)
    a, b = scores[paths[0]]["loss"], scores[paths[1]]["loss"]
    grid = tiled["tiling"][-1]["grid"]
    print(common.table(["run", "steps", "tile", "final loss (untiled objective)", "content", "style"],
                       [["untiled", args.steps, "-", a, scores[paths[0]]["content"], scores[paths[0]]["style"]],
                        ["tiled", args.steps, f"{args.tile} px, {grid[0]}x{grid[1]}", b,
                         scores[paths[1]]["content"], scores[paths[1]]["style"]]]))
    print(f"\ntiled / untiled final loss: {b / a:.4f}")
    print(f"seams: mean |neighbour difference| across the last step's tile boundaries {border:.5f}, "
          f"elsewhere {interior:.5f}: ratio {border / interior:.3f} (the untiled image at the same lines: "
          f"{border0 / interior0:.3f})")


def calibrate(args) -> None:
    rows = []
    base = child(CALIBRATE.format(here=str(BENCHMARKS), size=0))
    for size in (int(s) for s in args.sizes.split(",")):
        run = child(CALIBRATE.format(here=str(BENCHMARKS), size=size))
        rows.append([f"{size} x {size}", gb(run["maxrss_kb"]), run["estimate"] / 1e9])
    print(f"baseline (torch + network): {gb(base['maxrss_kb']):.3g} GB")
    print(common.table(["image", "peak RSS GB", "memory.py estimate GB"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--size", type=int, default=4096)
    m.add_argument("--steps", type=int, default=2)
    m.add_argument("--max-memory", default="4GB")
    m.add_argument("--start-size", default="192", help="coarse-to-fine from here; none: one scale")
    s = sub.add_parser("speed")
    s.add_argument("--size", type=int, default=2048)
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--max-memory", default="4GB")
    s.add_argument("--rounds", type=int, default=1, help="untiled/tiled pairs (interleaved)")
    q = sub.add_parser("quality")
    q.add_argument("--size", type=int, default=1024)
    q.add_argument("--steps", type=int, default=10)
    q.add_argument("--tile", type=int, default=384)
    q.add_argument("--weights", default="original", help="VGG19 weights of the runs and of the scoring objective")
    c = sub.add_parser("calibrate")
    c.add_argument("--sizes", default="256,512,768")
    args = parser.parse_args()
    print(common.machine())
    {"memory": memory_run, "speed": speed, "quality": quality, "calibrate": calibrate}[args.command](args)


if __name__ == "__main__":
    main()
