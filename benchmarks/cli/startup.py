"""How long `nst` takes to start, and how long until the network is ready from the weights cache.

- `nst --help` and `nst --version`, wall time of the whole process (median of several runs). Both
  must not import torch; the script checks that in a fresh interpreter and shows the cumulative
  import time of nstcli.cli.main from `python -X importtime`.
- Network ready: a random VGG19 features state dict is written into a temporary NSTCLI_CACHE as the
  cached imagenet file, then a fresh process times `import torch`, `import nstcli.api` and
  `api.load_network(Config(weights="imagenet"))` (what every run does before computing anything).

    python benchmarks/cli/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common


def nst_command() -> list[str]:
    """The installed `nst` script beside this Python, else `python -m nstcli`."""
    script = Path(sys.executable).with_name("nst")
    if script.exists():
        return [str(script)]
    found = shutil.which("nst")
    return [found] if found else [sys.executable, "-m", "nstcli"]


def wall(command: list[str], env=None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


CLI_MODULES = """
import sys
sys.argv = ["nst", "--help"]
from nstcli.cli.main import main
try:
    main()
except SystemExit:
    pass
print(sorted(m for m in ("torch", "torchvision", "PIL", "yaml", "tqdm") if m in sys.modules))
"""

READY = """
import json, time
start = time.perf_counter()
import torch
after_torch = time.perf_counter()
from nstcli import api
from nstcli.config.fields import Config
after_api = time.perf_counter()
network = api.load_network(Config(weights="imagenet"), torch.device("cpu"))
ready = time.perf_counter()
print(json.dumps({"torch": after_torch - start, "api": after_api - after_torch,
                  "load_network": ready - after_api}))
"""


def import_time_of_cli() -> float:
    """Cumulative seconds `import nstcli.cli.main` takes, from python -X importtime."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import nstcli.cli.main"],
                         check=True, capture_output=True, text=True).stderr
    for line in out.splitlines():
        if line.rstrip().endswith("| nstcli.cli.main"):
            return int(line.split("|")[1]) / 1e6
    raise RuntimeError("nstcli.cli.main not in the import time report")


def compare_trees(other: Path, repeats: int) -> None:
    """`nst --help` from this checkout and from `other`, interleaved: the only fair way on a machine whose
    speed drifts."""
    trees = {"this checkout": common.ROOT / "src", str(other): other / "src"}
    for flags in (["--help"], ["stylize", "--help"]):
        times: dict[str, list[float]] = {name: [] for name in trees}
        for round_ in range(repeats + 1):
            for name, src in trees.items():
                seconds = wall([sys.executable, "-m", "nstcli", *flags], env={**os.environ, "PYTHONPATH": str(src)})
                if round_:  # the first round warms the file cache
                    times[name].append(seconds)
        medians = {name: common.median(values) for name, values in times.items()}
        this, that = medians.values()
        print(common.table(["nst " + " ".join(flags), "median s", "min s"],
                           [[name, medians[name], min(times[name])] for name in trees]))
        print(f"this checkout / {other}: {this / that:.3f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", type=Path, default=None, help="another checkout to compare start-up with")
    args = parser.parse_args()
    print(common.machine())
    if args.against is not None:
        compare_trees(args.against.resolve(), args.repeats)
        return
    command = nst_command()
    modules = subprocess.run([sys.executable, "-c", CLI_MODULES], check=True, capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]  # after the help text
    print(f"modules loaded by `nst --help` (of torch, torchvision, PIL, yaml, tqdm): {modules}")
    print(f"`import nstcli.cli.main`: {import_time_of_cli():.3f} s cumulative (python -X importtime)")

    rows = []
    for flag in ("--help", "--version"):
        wall(command + [flag])  # warm the file cache
        times = [wall(command + [flag]) for _ in range(args.repeats)]
        rows.append([f"{' '.join(Path(command[0]).name if i == 0 else c for i, c in enumerate(command))} {flag}",
                     common.median(times), min(times)])

    from nstcli.network import cache as weights_cache
    from nstcli.network import sources

    with tempfile.TemporaryDirectory(prefix="nst-cache-") as cache:
        env = {**os.environ, "NSTCLI_CACHE": cache}
        os.environ["NSTCLI_CACHE"] = cache
        weights_cache.save_to_cache(common.random_weights(), sources.cached_path())
        size_mb = sources.cached_path().stat().st_size / 1e6
        ready = []
        totals = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", READY], check=True, capture_output=True,
                                 text=True, env=env).stdout
            totals.append(time.perf_counter() - start)
            ready.append(json.loads(out.strip().splitlines()[-1]))
    for key, label in (("load_network", "api.load_network(imagenet) from the cache"),
                       ("torch", "import torch"), ("api", "import nstcli.api (after torch)")):
        values = [r[key] for r in ready]
        rows.append([label, common.median(values), min(values)])
    rows.append(["process start to network ready", common.median(totals), min(totals)])
    print(f"(cache file: {size_mb:.0f} MB, random weights in the imagenet cache slot)")
    print(common.table(["what", "median s", "min s"], rows))


if __name__ == "__main__":
    main()
