"""Time to the default picture: this checkout's `nst stylize` against another checkout's, interleaved.

    python benchmarks/stylize/time_to_picture.py --against DIR --inputs DIR [--pairs a,b,...] [--size 512]
        [--args "..."] [--against-args "..."] [--out FOLDER] [--threads N]

DIR (--against) is another checkout of nstcli (for example `git worktree add /tmp/old 8c9c7ff`); its
`src/` is put first on PYTHONPATH of the processes that run it, so both use this environment's torch.
Every pair runs once under each checkout, pair by pair, the two in turn (so a drift in the machine's
speed hits both alike), each as its own process as a user would run it, with `--json` read for the
steps each scale ran. The table gives wall time per run, the ratio new / old, the steps that ran, and
the judge's content and style errors (../shared/tools/judge.py at 384 px) with their ratio; a sheet per
pair (old | new, and 100 % crops of the centre) is written to FOLDER to be looked at.

--inputs holds jcjohnson/neural-style's `examples/inputs/` (commit 07c4b82): the pairs are measured, not
committed. `examples` (the bundled CC0 pair) needs no folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
from common import judge_errors, machine, table

ROOT = Path(__file__).resolve().parents[2]
PAIRS = {
    "tubingen-starry": ("tubingen.jpg", "starry_night.jpg"),
    "golden_gate-kahlo": ("golden_gate.jpg", "frida_kahlo.jpg"),
    "hoover-scream": ("hoovertowernight.jpg", "the_scream.jpg"),
    "pitt-picasso": ("brad_pitt.jpg", "picasso_selfport1907.jpg"),
    "tubingen-shipwreck": ("tubingen.jpg", "shipwreck.jpg"),
    "golden_gate-matisse": ("golden_gate.jpg", "woman-with-hat-matisse.jpg"),
    "pitt-starry": ("brad_pitt.jpg", "starry_night.jpg"),
    "hoover-seated": ("hoovertowernight.jpg", "seated-nude.jpg"),
    "hoover-starry": ("hoovertowernight.jpg", "starry_night_google.jpg"),  # --config large's pair
    "examples": (ROOT / "examples" / "content.jpg", ROOT / "examples" / "style.jpg"),
}


def run(tree: Path, content: Path, style: Path, out: Path, size: int, args: list[str], threads: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "nstcli", "stylize", str(content), str(style), "-o", str(out), "--size",
               str(size), "--quiet", "--json", "--checkpoint-every", "0", *args]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr}")
    report = json.loads(done.stdout)
    return {"seconds": seconds, "steps": report["steps"],
            "scales": [f"{w}:{s['ran']}" for (h, w), s in zip(report["scales"], report.get("scale_steps", []))]
            or [str(w) for h, w in report["scales"]]}


def sheet(old: Path, new: Path, target: Path, crop: int = 256) -> None:
    """old | new on top, their centre crops at 100 % below."""
    a, b = Image.open(old).convert("RGB"), Image.open(new).convert("RGB")
    width, height = a.size
    box = ((width - crop) // 2, (height - crop) // 2, (width + crop) // 2, (height + crop) // 2)
    canvas = Image.new("RGB", (2 * width, height + crop), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b.resize(a.size), (width, 0))
    canvas.paste(a.crop(box), (0, height))
    canvas.paste(b.resize(a.size).crop(box), (width, height))
    canvas.save(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout (the old code)")
    parser.add_argument("--inputs", type=Path, default=None, help="jcjohnson/neural-style's examples/inputs/")
    parser.add_argument("--pairs", default="tubingen-starry,golden_gate-kahlo,hoover-scream,pitt-picasso")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--args", default="", help="extra options for this checkout's runs")
    parser.add_argument("--against-args", default="", help="extra options for the other checkout's runs")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every run")
    parser.add_argument("--out", type=Path, default=Path("time_to_picture"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine())
    rows = []
    for name in args.pairs.split(","):
        content, style = (Path(p) if Path(p).is_absolute() else args.inputs / p for p in PAIRS[name])
        outputs = {}
        results = {}
        for label, tree, extra in (("old", args.against.resolve(), args.against_args), ("new", ROOT, args.args)):
            outputs[label] = args.out / f"{name}_{args.size}_{label}.png"
            results[label] = run(tree, content, style, outputs[label], args.size, shlex.split(extra), args.threads)
        (c_old, s_old), (c_new, s_new) = judge_errors(content, style, [outputs["old"], outputs["new"]])
        sheet(outputs["old"], outputs["new"], args.out / f"{name}_{args.size}_sheet.png")
        rows.append([name, results["old"]["seconds"], results["new"]["seconds"],
                     results["new"]["seconds"] / results["old"]["seconds"], results["old"]["steps"],
                     " ".join(results["new"]["scales"]), f"{c_old:.3f} / {s_old:.3f}", f"{c_new:.3f} / {s_new:.3f}",
                     f"{c_new / c_old:.2f} / {s_new / s_old:.2f}"])
        print(f"  {name} done", file=sys.stderr, flush=True)
    print(table(["pair", "old s", "new s", "new/old", "old steps", "new px:steps", "old judge", "new judge",
                 "judge new/old"], rows))


if __name__ == "__main__":
    main()
