"""Every benchmark script runs from a clean install and prints its table (tiny sizes; no timings asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

TINY = {
    "step_cost.py": ["--sizes", "32", "--repeats", "1", "--steps", "1"],
    "step_floor.py": ["--sizes", "32", "--repeats", "1", "--steps", "1"],
    "time_to_quality.py": ["--size", "32", "--report-steps", "3", "--max-steps", "3", "--every", "1"],
    "startup.py": ["--repeats", "1"],
    "memory.py": ["--sizes", "32", "--steps", "1", "--check-size", "0"],
    "defaults.py": ["--size", "48", "--candidates", "3;2@32"],
    "precision_compile.py": ["--size", "32", "--steps", "2", "--no-compile"],
    "precision.py": ["floor", "quality", "--sizes", "32", "--repeats", "1", "--size", "32", "--steps", "2"],
    "convergence.py": ["--size", "48", "--steps", "4"],
    "reconstruction_psnr.py": ["--size", "32", "--steps", "2"],
    "threads.py": ["--sizes", "32", "--rounds", "1", "--steps", "1"],
    "profile_step.py": ["--sizes", "32", "--repeats", "1"],
    "batch.py": ["--images", "2", "--size", "32", "--steps", "1"],
    "tiles.py": ["quality", "--size", "64", "--steps", "2", "--tile", "48"],
    "wasserstein_sqrt.py": ["--size", "32", "--steps", "2", "--repeats", "1", "--sizes", "32"],
    "wasserstein_schedule.py": ["--size", "48", "--reference-steps", "2/1", "--candidates", "lbfgs:3;adam:1/1"],
    "video.py": ["--clip", "walker", "--frames", "3", "--size", "48", "--steps", "2", "--frame-steps", "1", "--sweep", "1", "--before",
                 "--sweep-frames", "2"],
    "masks.py": ["--size", "48", "--steps", "1", "--figure", "masks.png"],
    "ui_speed.py": ["--size", "32", "--steps", "2", "--rounds", "1", "--driver", "apptest"],
    "fast_apply.py": ["--widths", "8", "--blocks", "1", "--repeats", "1", "--sizes", "32x48", "--no-bf16"],
    "fast_train.py": ["--size", "32", "--batch", "1", "--steps", "2", "--rounds", "1", "--weights", "random"],
    "fast_video.py": ["--frames", "3", "--size", "48"],
    "fast_quality.py": [str(BENCHMARKS.parent / "examples" / "content.jpg"), "--model", "untrained",
                        "--style", str(BENCHMARKS.parent / "examples" / "style.jpg"), "--size", "48",
                        "--stylize-args", "--weights random --steps 2", "--figure", "fast.png"],
    "ghosts.py": ["--inputs", "in", "--pairs", "examples", "--size", "32", "--steps", "2", "--weights", "random",
                  "--out", "out"],
    "large_outputs.py": [str(BENCHMARKS.parent / "examples" / "content.jpg"),
                         str(BENCHMARKS.parent / "examples" / "style.jpg"), "--size", "48",
                         "--args", "--weights random --steps 2 --checkpoint-every 0", "--out", "out",
                         "--crop-size", "16", "--width", "64", "--figure", "large.png"],
    "real_weights.py": ["--size", "32", "--steps", "2", "--out", "out", "--figure", "real.png"],
}


def test_every_script_is_covered():
    assert sorted(TINY) == sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "common.py")


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_script_runs(script, tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *TINY[script]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    if script == "batch.py":  # a plain-text table with the ratio
        assert "ratio loop / batch" in done.stdout, done.stdout
    else:  # a Markdown table: header, rule and at least one row
        assert len([line for line in done.stdout.splitlines() if line.startswith("|")]) >= 3, done.stdout
