"""Helpers shared by the benchmark scripts: inputs, the report's loop, the floor, timing, tables.

Everything here uses an untrained VGG19 (seeded): the cost of a step does not depend on the values
of the weights, and no benchmark needs a download.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from nstcli.runtime import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()  # as `nst` does, before torch loads OpenMP

import torch  # noqa: E402

from nstcli.network.conventions import TORCHVISION  # noqa: E402
from nstcli.network.features import VGGFeatures  # noqa: E402
from nstcli.image.io import open_image, pil_to_tensor  # noqa: E402
from nstcli.network.weights import random_state_dict  # noqa: E402
from nstcli import api  # noqa: E402
from nstcli.config.fields import Config  # noqa: E402
from nstcli.reports import Callback  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent  # the repository
CONTENT = ROOT / "examples" / "content.jpg"
STYLE = ROOT / "examples" / "style.jpg"
SEED = 0

# The report's network: torchvision's vgg19().features[:29]; it read conv1_1, conv2_1, conv3_1,
# conv4_1 and conv5_1, which are these indices of that Sequential.
REPORT_LAYERS = (0, 5, 10, 19, 28)
REPORT_ALPHA = 1.0
REPORT_BETA = 0.01
REPORT_LR = 0.01


def example_images(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled content and style images squeezed to size x size, as (1, 3, H, W) in [0, 1].

    Square, as the report's loader made them (it resized both images to 356 x 356): then the
    content, style and generated images have the same number of positions and the report's
    unnormalised Gram matrices compare like with like.
    """
    from PIL import Image

    def square(path):
        return pil_to_tensor(open_image(path).resize((size, size), Image.Resampling.LANCZOS))

    return square(CONTENT), square(STYLE)


def write_examples(size: int, folder: str | Path) -> tuple[Path, Path]:
    """example_images(size) as PNG files, for runs through nstcli's file-based API."""
    from nstcli.image.io import save_image

    content, style = example_images(size)
    paths = Path(folder) / "content.png", Path(folder) / "style.png"
    save_image(content, paths[0])  # lossless: the tool reads back exactly these pixels
    save_image(style, paths[1])
    return paths


def random_weights() -> dict[str, torch.Tensor]:
    """The untrained VGG19 every benchmark uses (nstcli's `--weights random` with seed 0)."""
    return random_state_dict(SEED)


# --- the report's loop, re-implemented plainly ---------------------------------------------------

def report_network(state: dict[str, torch.Tensor]) -> torch.nn.Sequential:
    """torchvision's VGG19 trunk up to conv5_1, as the report built it: weights NOT frozen."""
    from torchvision.models import vgg19

    network = vgg19(weights=None).features[:29]
    network.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < 29})
    return network.eval()  # requires_grad stays True, as in the report


class ReportLoss(torch.nn.Module):
    """The report's objective for one content and one style image.

    content = sum over conv1_1..conv5_1 of mean((F - P)^2); style = sum of mean((G - A)^2) with
    unnormalised Gram matrices G = F F^T; total = 1 * content + 0.01 * style. Images are normalised
    with ImageNet's mean and std first, as torchvision's ImageNet weights expect (and as nstcli's
    configs/seed.yaml, which converts this objective, assumes).

    Note: torchvision's ReLUs work in place, so the outputs collected at indices 0, 5, 10 and 19
    are overwritten by the ReLU that follows them: the loop really reads relu1_1, relu2_1,
    relu3_1, relu4_1 and conv5_1 (index 28 is the last layer, nothing follows it). This
    re-implementation does the same as the report's code did.
    """

    def __init__(self, network: torch.nn.Sequential):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(TORCHVISION.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(TORCHVISION.std).view(1, 3, 1, 1))

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.network):
            x = layer(x)
            if index in REPORT_LAYERS:
                out.append(x)
        return out

    @staticmethod
    def gram(features: torch.Tensor) -> torch.Tensor:
        flat = features.flatten(2)[0]
        return flat @ flat.t()

    def combine(self, generated_features, content_features, style_grams) -> torch.Tensor:
        content_loss = style_loss = 0
        for g, p, a in zip(generated_features, content_features, style_grams):
            content_loss = content_loss + torch.mean((g - p) ** 2)
            style_loss = style_loss + torch.mean((self.gram(g) - a) ** 2)
        return REPORT_ALPHA * content_loss + REPORT_BETA * style_loss

    def forward(self, generated, content, style) -> torch.Tensor:
        # Everything recomputed every call, as the report's loop did, graph and all.
        style_grams = [self.gram(s) for s in self.features(style)]
        return self.combine(self.features(generated), self.features(content), style_grams)


class ReportLoop:
    """The report's optimisation: Adam (lr 0.01) on the pixels, starting from the content image."""

    def __init__(self, state, content: torch.Tensor, style: torch.Tensor):
        self.loss = ReportLoss(report_network(state))
        self.content, self.style = content, style
        self.generated = content.clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.generated], lr=REPORT_LR)

    def step(self) -> float:
        loss = self.loss(self.generated, self.content, self.style)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()


class ReportLossOf:
    """The report's loss of any image (e.g. nstcli's iterate), with the targets computed once."""

    def __init__(self, loss: ReportLoss, content: torch.Tensor, style: torch.Tensor):
        self.loss = loss
        with torch.no_grad():
            self.content_features = [f.clone() for f in loss.features(content)]
            self.style_grams = [loss.gram(f) for f in loss.features(style)]

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> float:
        image = image.contiguous()  # the report's network runs in the default layout
        return float(self.loss.combine(self.loss.features(image), self.content_features, self.style_grams))


# --- the floor ---------------------------------------------------------------------------------

class Floor:
    """The bare cost of one step: frozen, truncated, channels_last VGG19 forward + backward to the input.

    Same trunk as nstcli builds for its default layers; the loss is just the sum of the outputs, so
    nothing but the network is computed.
    """

    def __init__(self, state, layers, content: torch.Tensor, channels_last: bool = True, precision: str = "fp32"):
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.network = VGGFeatures(state, layers, precision=precision).to(memory_format=layout)
        self.image = content.clone().contiguous(memory_format=layout).requires_grad_(True)

    def step(self) -> None:
        self.image.grad = None
        total = sum(out.sum() for out in self.network(self.image).values())
        total.backward()


# --- timing and tables -------------------------------------------------------------------------

def timed(function, repeats: int) -> list[float]:
    """Wall-clock seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def interleaved(variants: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each variant: all warmed up once (allocator, oneDNN primitives, lazy inits), then
    run in turn `repeats` times, so they share the machine's load alike. A variant returns a list of times."""
    for run in variants.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            times[name] += run()
    return {name: median(values) for name, values in times.items()}


class Autocast(torch.nn.Module):
    """A network under bf16 autocast, handing fp32 activations to the loss."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, image):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = self.network(image)
        return {name: value.float() for name, value in features.items()}


def median(values) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list]) -> str:
    """A plain Markdown table (pastes into benchmarks/README.md as it is)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def machine() -> str:
    """One line saying what these figures were measured on."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at start"
    wait = os.environ.get("OMP_WAIT_POLICY", "unset")
    return (f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY {wait}{load}")


# --- the judge (../shared/tools/judge.py, beside the project) ---------------------------------------

JUDGE = ROOT.parent / "shared" / "tools" / "judge.py"


def judge_errors(content, style, images) -> list[tuple[float, float]]:
    """(content error, style error) of each image by the judge at its default 384 px; NaN without it."""
    import subprocess
    import sys

    if not JUDGE.exists():
        return [(float("nan"), float("nan"))] * len(images)
    lines = subprocess.run([sys.executable, str(JUDGE), str(content), str(style), *map(str, images)], check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-len(images):]
    return [(float(line.split()[-2]), float(line.split()[-1])) for line in lines]


class StepTimer(Callback):
    """Seconds between consecutive step reports (the first step of a run is warm-up, not timed)."""

    def __init__(self):
        self.times: list[float] = []
        self._last = None

    def on_start(self, total_steps: int) -> None:
        self.times, self._last = [], None

    def on_step(self, report) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


class ToolRun:
    """`nstcli.api.stylize` on the bundled examples at `size`, default config, `steps` timed steps."""

    def __init__(self, size: int, steps: int, **config):
        self._folder = tempfile.TemporaryDirectory(prefix="nst-bench-")
        self.content, self.style = write_examples(size, self._folder.name)
        # One scale (start_size None): every timed step is a step at `size`.
        self.config = Config(**{"weights": "random", "size": size, "steps": steps + 1,
                                "start_size": None,
                                "checkpoint_every": 0, **config})
        self.timer = StepTimer()

    def run(self) -> list[float]:
        api.stylize(self.content, self.style, None, config=self.config, callbacks=[self.timer])
        return list(self.timer.times)


def size_list(text: str) -> list[int]:
    """--sizes 256,512 as [256, 512]."""
    return [int(size) for size in text.split(",")]


def timing_arguments(description: str, sizes: str, repeats: int, steps: int | None = None) -> argparse.ArgumentParser:
    """The command line of a script that times steps at several sizes, interleaving its variants."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", type=size_list, default=size_list(sizes), help=f"comma-separated (default {sizes})")
    parser.add_argument("--repeats", type=int, default=repeats, help="interleaved repetitions per size")
    if steps is not None:
        parser.add_argument("--steps", type=int, default=steps, help="timed steps per variant per repetition")
    return parser


def begin() -> None:
    """What a measuring run starts with: the untrained network's warning silenced (it would come once per
    run), the seed set, and the machine named above the table."""
    warnings.simplefilter("ignore")
    torch.manual_seed(SEED)
    print(machine())



def standard_terms(loss, network, content, styles, blend=None):
    """Content, style and pixel terms of one scale straight from tensors (no caching, no colour
    handling), for scripts that drive the engine themselves: terms/builder.py's build_objective."""
    import dataclasses

    from nstcli.terms.builder import Styles, build_objective

    blend = list(blend) if blend is not None else [1.0 / len(styles)] * len(styles)
    plain = dataclasses.replace(loss, preserve_color="none")
    return build_objective(plain, network, content, Styles(lambda: list(styles), blend))[1]
