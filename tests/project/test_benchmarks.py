"""Every benchmark script runs from a clean install and prints its table (tiny sizes; no timings asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

TINY = {
    "stylize/step_cost.py": ["--sizes", "32", "--repeats", "1", "--steps", "1"],
    "decisions/step_floor.py": ["--sizes", "32", "--repeats", "1", "--steps", "1"],
    "stylize/time_to_quality.py": ["--size", "32", "--report-steps", "3", "--max-steps", "3", "--every", "1"],
    "cli/startup.py": ["--repeats", "1"],
    "stylize/memory.py": ["--sizes", "32", "--steps", "1", "--check-size", "0"],
    "decisions/defaults.py": ["--size", "48", "--candidates", "3;2@32"],
    "decisions/precision_compile.py": ["--size", "32", "--steps", "2", "--no-compile"],
    "stylize/precision.py": ["floor", "quality", "--sizes", "32", "--repeats", "1", "--size", "32", "--steps", "2"],
    "decisions/convergence.py": ["--size", "48", "--steps", "4"],
    "stylize/reconstruction_psnr.py": ["--size", "32", "--steps", "2"],
    "decisions/threads.py": ["--sizes", "32", "--rounds", "1", "--steps", "1"],
    "stylize/profile_step.py": ["--sizes", "32", "--repeats", "1"],
    "stylize/batch.py": ["--images", "2", "--size", "32", "--steps", "1"],
    "tiling/tiles.py": ["quality", "--size", "64", "--steps", "2", "--tile", "48"],
    "decisions/wasserstein_sqrt.py": ["--size", "32", "--steps", "2", "--repeats", "1", "--sizes", "32"],
    "decisions/wasserstein_schedule.py": ["--size", "48", "--reference-steps", "2/1", "--candidates", "lbfgs:3;adam:1/1"],
    "video/video.py": ["--clip", "walker", "--frames", "3", "--size", "48", "--steps", "2", "--frame-steps", "1", "--sweep", "1", "--before",
                 "--sweep-frames", "2"],
    "stylize/masks.py": ["--size", "48", "--steps", "1", "--figure", "masks.png"],
    "ui/ui_speed.py": ["--size", "32", "--steps", "2", "--rounds", "1", "--driver", "apptest"],
    "fast/fast_apply.py": ["--widths", "8", "--blocks", "1", "--repeats", "1", "--sizes", "32x48", "--no-bf16"],
    "fast/fast_grid.py": [str(BENCHMARKS.parent / "examples" / "content.jpg")],
    "fast/fast_startup.py": ["--size", "64", "--images", "2", "--rounds", "1"],
    "fast/fast_train_step.py": ["--width", "8", "--blocks", "1", "--batch", "1", "--crop", "32", "--rounds", "1",
                           "--steps", "1", "--train-steps", "1"],
    "runtime/gpu.py": ["--device", "cpu", "--quick"],
    "fast/fast_train.py": ["--size", "32", "--batch", "1", "--steps", "2", "--rounds", "1", "--weights", "random"],
    "fast/fast_video.py": ["--frames", "3", "--size", "48"],
    "fast/fast_quality.py": [str(BENCHMARKS.parent / "examples" / "content.jpg"), "--model", "untrained",
                        "--style", str(BENCHMARKS.parent / "examples" / "style.jpg"), "--size", "48",
                        "--stylize-args", "--weights random --steps 2", "--figure", "fast.png"],
    "stylize/ghosts.py": ["--inputs", "in", "--pairs", "examples", "--size", "32", "--steps", "2", "--weights", "random",
                  "--out", "out"],
    "stylize/large_outputs.py": [str(BENCHMARKS.parent / "examples" / "content.jpg"),
                         str(BENCHMARKS.parent / "examples" / "style.jpg"), "--size", "48",
                         "--args", "--weights random --steps 2 --checkpoint-every 0", "--out", "out",
                         "--crop-size", "16", "--width", "64", "--figure", "large.png"],
    "stylize/neighbours.py": ["--inputs", "in", "--pairs", "examples", "--size", "32", "--out", "out",
                              "--args", "--weights random --steps 2"],
    "stylize/real_weights.py": ["--size", "32", "--steps", "2", "--out", "out", "--figure", "real.png"],
    "stylize/time_to_picture.py": ["--against", str(BENCHMARKS.parent), "--pairs", "examples", "--size", "32",
                                   "--args", "--weights random --steps 2", "--against-args",
                                   "--weights random --steps 2", "--out", "ttp"],
    "decisions/plateau.py": [str(BENCHMARKS.parent / "examples" / "content.jpg"),
                             str(BENCHMARKS.parent / "examples" / "style.jpg"), "--size", "32", "--start-size", "16",
                             "--steps", "25", "--windows", "10", "--tolerances", "0.05"],
    "stylize/readme_figure.py": ["--size", "32", "--steps", "2", "--weights", "random", "--figure", "readme.png"],
}


def test_every_script_is_covered():
    assert [p.name for p in BENCHMARKS.glob("*.py")] == ["common.py"]  # every script in a family folder
    assert sorted(TINY) == sorted(str(p.relative_to(BENCHMARKS)) for p in BENCHMARKS.glob("*/*.py"))


@pytest.mark.e2e
@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_script_runs(script, tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *TINY[script]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    if script == "stylize/batch.py":  # a plain-text table with the ratio
        assert "ratio loop / batch" in done.stdout, done.stdout
    else:  # a Markdown table: header, rule and at least one row
        assert len([line for line in done.stdout.splitlines() if line.startswith("|")]) >= 3, done.stdout
