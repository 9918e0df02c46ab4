"""The README's first figure, made with today's defaults, and the record of the settings it was made with.

    python benchmarks/stylize/readme_figure.py [--figure docs/readme_figure.png] [--threads N]
        [--size N] [--steps N] [--weights NETWORK]

Runs `nst stylize`'s defaults (the whole `Config()`, nothing overridden unless asked) on two bundled
pairs whose licences allow it (examples/SOURCES.md):
- examples/content.jpg (Chelsea the cat, CC0) x examples/style.jpg (generated, CC0);
- examples/rocket.jpg (SpaceX, public domain) x examples/style.jpg.
It writes the figure (per pair: photo, painting, result, the judge's content / style errors under
the result when ../shared/tools/judge.py is beside the project) and, beside it, FIGURE.json: every
config key's value, the pairs with their SHA-256, the seconds each run took and the machine.
`tests/project/test_readme_figure.py` fails when that record's settings differ from the defaults,
so a changed default asks for this script to be run again. Writing docs/readme_figure.png also
regenerates the README's caption from the record (docs/generate.py, block `readme figure`).
--size/--steps/--weights override the defaults for a quick check of the script only (the record
then says so, and the test refuses it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common  # noqa: E402

import torch  # noqa: E402

from nstcli import api  # noqa: E402
from nstcli.config.fields import Config, as_dict  # noqa: E402
from nstcli.digests import sha256_of  # noqa: E402

ROOT = common.ROOT
FIGURE = ROOT / "docs" / "readme_figure.png"
PAIRS = [("examples/content.jpg", "examples/style.jpg"), ("examples/rocket.jpg", "examples/style.jpg")]


def record_path(figure: Path) -> Path:
    """docs/readme_figure.png -> docs/readme_figure.json beside it."""
    return figure.with_suffix(".json")


def settings_of(config: Config) -> dict:
    """The config's values as JSON holds them (tuples as lists), to compare with the defaults."""
    return json.loads(json.dumps(as_dict(config)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", type=Path, default=FIGURE, help="the PNG to write (default docs/readme_figure.png)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--size", type=int, default=None, help="override the default size (checks only)")
    parser.add_argument("--steps", type=int, default=None, help="override the default steps (checks only)")
    parser.add_argument("--weights", default=None, help="override the default weights (checks only)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {key: value for key, value in (("size", args.size), ("steps", args.steps), ("weights", args.weights))
                 if value is not None}
    config = Config().replace(**overrides) if overrides else Config()
    print(common.machine())

    from PIL import Image

    from nstcli.image.sheets import labelled_sheet

    from nstcli.image.io import resize_longest

    pictures, labels, runs = [], [], []
    scratch = tempfile.TemporaryDirectory(prefix="nst-readme-figure-")  # results and their checkpoints
    outputs = Path(scratch.name)
    for content, style in PAIRS:
        out = outputs / f"{Path(content).stem}__{Path(style).stem}.png"
        started = time.perf_counter()
        api.stylize(ROOT / content, ROOT / style, out, config=config)
        seconds = time.perf_counter() - started
        runs.append({"content": content, "style": style, "content_sha256": sha256_of(ROOT / content),
                     "style_sha256": sha256_of(ROOT / style), "seconds": round(seconds, 1), "output": out.name})
    errors = common.judge_errors(ROOT / PAIRS[0][0], ROOT / PAIRS[0][1], [outputs / runs[0]["output"]])
    errors += common.judge_errors(ROOT / PAIRS[1][0], ROOT / PAIRS[1][1], [outputs / runs[1]["output"]])
    for run, (content_error, style_error) in zip(runs, errors):
        if content_error == content_error:  # not NaN: the judge is there
            run["judge"] = {"content_error": round(content_error, 3), "style_error": round(style_error, 3)}
        result = Image.open(outputs / run["output"]).convert("RGB")
        # The inputs at the result's size, so no cell is enlarged past its pixels.
        shown = [resize_longest(Image.open(ROOT / run[key]).convert("RGB"), max(result.size))
                 for key in ("content", "style")] + [result]
        judged = f" (judge {content_error:.2f} / {style_error:.2f})" if "judge" in run else ""
        pictures += shown
        labels += [run["content"].split("/")[-1], run["style"].split("/")[-1], f"nst stylize{judged}"]
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    labelled_sheet(pictures, labels, columns=3).save(args.figure)
    scratch.cleanup()
    record = {"made_by": "python benchmarks/stylize/readme_figure.py", "overrides": overrides,
              "config": settings_of(config), "pairs": runs, "machine": common.machine()}
    record_path(args.figure).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    if args.figure.resolve() == FIGURE.resolve():
        sys.path.insert(0, str(ROOT / "docs"))
        import generate

        generate.main([])  # the README's caption, from the record just written
    print(common.table(["content", "style", "seconds", "judge content / style"],
                       [[run["content"], run["style"], run["seconds"],
                         "{content_error} / {style_error}".format(**run["judge"]) if "judge" in run else "-"]
                        for run in runs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
