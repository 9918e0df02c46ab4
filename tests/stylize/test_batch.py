"""nst batch: folders, resume, shards, JSON lines, failures and interrupts, with an untrained VGG19."""

import json
import re

import pytest
from PIL import Image

from helpers import FAST, error_line, make_image, no_network
from nstcli.stylize import single
from nstcli.stylize import styles as styles_module
from nstcli import api
from nstcli.optim import engine
from nstcli.network import weights as weights_module
from nstcli.jobs.shards import shard_of
from nstcli.stylize.batch_plan import plan_batch
from nstcli.cli.main import nst
from nstcli.config.fields import Config


def photo_folder(folder, count=3):
    """`count` good images p0..p{count-1}.png in `folder`."""
    return [make_image(folder / f"p{i}.png", size=(40, 28), seed=10 + i) for i in range(count)]


def batch(runner, *args):
    return runner.invoke(nst, ["batch", *map(str, args), *FAST])


def json_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_bad_files_fail_and_the_rest_is_written(runner, style, tmp_path):
    """It writes every good output, names the corrupt and the text file in the summary, and exits 1."""
    photos = tmp_path / "photos"
    good = photo_folder(photos)
    corrupt = photos / "broken.png"
    corrupt.write_bytes(good[0].read_bytes()[:150])  # a truncated PNG
    text = photos / "notes.jpg"
    text.write_text("not a picture\n")
    (photos / "readme.txt").write_text("ignored: not an image extension\n")
    make_image(photos / ".hidden.png")  # ignored: hidden
    out = tmp_path / "out"

    result = batch(runner, photos, "--style", style, "-o", out)

    assert result.exit_code == 1
    written = sorted(p.name for p in out.iterdir())
    assert written == ["p0__style.png", "p1__style.png", "p2__style.png"]
    assert Image.open(out / "p0__style.png").size == (32, 22)
    assert result.stdout.splitlines() == [str(out / name) for name in written]
    assert result.stderr.count("Warning: using an untrained VGG19") == 1  # once per batch, not per item
    lines = result.stderr.splitlines()
    assert "batch: 3 done, 0 skipped, 2 failed of 5 items" in lines
    assert (f"failed: {corrupt} with style {style}: image {corrupt} is damaged or truncated "
            "(image file is truncated); re-export or replace it") in lines
    assert (f"failed: {text} with style {style}: image {text} is not an image Pillow can read; "
            "give a PNG, JPEG, WebP, TIFF, BMP or GIF file") in lines
    assert error_line(result) == ("Error: 2 of 5 items failed (listed above); fix or remove those files and "
                                  "run the same command again: finished outputs are skipped")


def test_rerun_skips_finished_outputs(runner, style, tmp_path):
    """It skips every item whose output exists on a re-run, and redoes them with --overwrite."""
    photos = tmp_path / "photos"
    photo_folder(photos, count=2)
    out = tmp_path / "out"
    first = batch(runner, photos, "--style", style, "-o", out)
    assert first.exit_code == 0, first.output
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert len(stamps) == 2

    again = batch(runner, photos, "--style", style, "-o", out)
    assert again.exit_code == 0
    assert again.stdout == ""
    assert "batch: 0 done, 2 skipped, 0 failed of 2 items" in again.stderr.splitlines()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    redo = batch(runner, photos, "--style", style, "-o", out, "--overwrite")
    assert "batch: 2 done, 0 skipped, 0 failed of 2 items" in redo.stderr.splitlines()
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in out.iterdir())


def test_shards_cover_every_item_once(runner, style, tmp_path):
    """It splits the items so that --shard 1/2 and --shard 2/2 together run each exactly once."""
    photos = tmp_path / "photos"
    photo_folder(photos, count=3)
    other = make_image(tmp_path / "other.png", size=(40, 40), seed=7)
    out = tmp_path / "out"
    args = [photos, "--style", style, "--style", other, "-o", out, "--json"]

    # The second shard runs first: which items shard 1 gets must not depend on outputs already there.
    second = batch(runner, *args, "--shard", "2/2")
    first = batch(runner, *args, "--shard", "1/2")
    assert first.exit_code == second.exit_code == 0
    outputs_1 = [row["output"] for row in json_lines(first)]
    outputs_2 = [row["output"] for row in json_lines(second)]
    assert all(row["status"] == "done" for row in json_lines(first) + json_lines(second))
    everything = {str(out / f"p{i}__{s}.png") for i in range(3) for s in ("style", "other")}
    assert sorted(outputs_1 + outputs_2) == sorted(everything)
    assert outputs_1 and outputs_2
    assert {str(p) for p in out.iterdir()} == everything


def test_shards_partition_any_plan(tmp_path, style):
    """It assigns every planned item to exactly one of N shards, the same way on every call."""
    photos = tmp_path / "photos"
    photo_folder(photos, count=7)
    full = [item.name for item in plan_batch([photos], [style], tmp_path / "out")]
    for n in (1, 3, 5):
        parts = [[item.name for item in plan_batch([photos], [style], tmp_path / "out", shard=(k, n))]
                 for k in range(1, n + 1)]
        assert sorted(sum(parts, [])) == sorted(full)
        assert parts == [[item.name for item in plan_batch([photos], [style], tmp_path / "out", shard=(k, n))]
                         for k in range(1, n + 1)]


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "two/4", "1/2/3", ""])
def test_bad_shard_is_a_usage_error(runner, style, tmp_path, spec, monkeypatch):
    """It refuses a malformed --shard with exit 2 before loading anything."""
    no_network(monkeypatch)
    photo_folder(tmp_path / "photos", count=1)
    result = batch(runner, tmp_path / "photos", "--style", style, "-o", tmp_path / "out", "--shard", spec)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: --shard {spec!r} is not K/N with 1 <= K <= N; e.g. --shard 2/4 "
                                  "runs the second quarter of the items (or --shard auto inside a SLURM "
                                  "array or a Kubernetes Indexed Job)")


def test_json_lines(runner, style, tmp_path):
    """It prints one parseable JSON line per item, for done, skipped and failed items alike."""
    photos = tmp_path / "photos"
    photo_folder(photos, count=2)
    (photos / "bad.jpg").write_text("text")
    out = tmp_path / "out"
    make_image(out / "p1__style.png")  # already done

    result = batch(runner, photos, "--style", style, "-o", out, "--json")

    assert result.exit_code == 1
    rows = json_lines(result)
    assert [(row["input"], row["status"]) for row in rows] == [
        (str(photos / "bad.jpg"), "failed"), (str(photos / "p0.png"), "done"), (str(photos / "p1.png"), "skipped")]
    for row in rows:
        assert set(row) == {"input", "style", "output", "status", "seconds", "error", "precision"}
        assert row["style"] == str(style)
        assert isinstance(row["seconds"], float)
    assert rows[0]["error"].startswith(f"image {photos / 'bad.jpg'} is not an image Pillow can read")
    assert rows[1]["output"] == str(out / "p0__style.png") and rows[1]["error"] is None


def test_network_and_style_targets_built_once(runner, style, tmp_path, monkeypatch, fresh_network_cache):
    """It loads the network once per batch and computes each style's Gram matrices once, not per item."""
    photos = tmp_path / "photos"
    photo_folder(photos)
    other = make_image(tmp_path / "other.png", size=(40, 40), seed=7)
    loads, forwards = [], []
    real_load, real_forward = weights_module.load_source, engine.VGGFeatures.forward

    def counting_load(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    def counting_forward(self, image):
        forwards.append(image.requires_grad)
        return real_forward(self, image)

    monkeypatch.setattr(weights_module, "load_source", counting_load)
    monkeypatch.setattr(engine.VGGFeatures, "forward", counting_forward)

    result = runner.invoke(nst, ["batch", str(photos), "--style", str(style), "--style", str(other),
                                 "-o", str(tmp_path / "out"), "--weights", "random", "--size", "32",
                                 "--steps", "2", "--checkpoint-every", "0", "--quiet"])

    assert result.exit_code == 0, result.output
    assert len(loads) == 1
    # 6 items: one content forward each, one forward per style for the whole batch, 2 steps each.
    assert forwards.count(False) == 6 + 2
    assert forwards.count(True) == 6 * 2


def test_interrupt_keeps_finished_outputs_and_writes_no_partial(runner, style, tmp_path, monkeypatch):
    """It exits 130 on Ctrl-C with finished outputs intact and the current item unwritten; a re-run resumes."""
    photos = tmp_path / "photos"
    good = photo_folder(photos)
    out = tmp_path / "out"
    real_loss = engine.evaluate
    calls = {"n": 0}

    def ctrl_c_in_second_item(*args):
        calls["n"] += 1
        if calls["n"] == 5:  # step 2 of the second item (3 steps per item)
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(engine, "evaluate", ctrl_c_in_second_item)
    result = batch(runner, photos, "--style", style, "-o", out)

    assert result.exit_code == 130
    assert error_line(result) == (f"Error: interrupted during {good[1]} with style {style}; its output was "
                                  "not written; run the same command again to resume")
    assert "batch: 1 done, 0 skipped, 0 failed of 3 items, 2 not run" in result.stderr.splitlines()
    assert [p.name for p in out.iterdir()] == ["p0__style.png"]  # no partial, no temporary file
    finished = out / "p0__style.png"
    assert Image.open(finished).size == (32, 22)
    stamp = finished.stat().st_mtime_ns

    monkeypatch.setattr(engine, "evaluate", real_loss)
    again = batch(runner, photos, "--style", style, "-o", out)
    assert again.exit_code == 0
    assert "batch: 2 done, 1 skipped, 0 failed of 3 items" in again.stderr.splitlines()
    assert finished.stat().st_mtime_ns == stamp


def test_recursive_keeps_subfolders(tmp_path, style):
    """It descends only with recursive, keeps subfolders under the output, skips hidden and output folders."""
    photos = tmp_path / "photos"
    make_image(photos / "a.png")
    make_image(photos / "2020" / "IMG_1.jpg")
    make_image(photos / "2021" / "IMG_1.jpg")
    make_image(photos / ".cache" / "thumb.png")
    out = photos / "results"
    make_image(out / "a__style.png")  # an earlier result inside the input folder

    flat = plan_batch([photos], [style], out)
    deep = plan_batch([photos], [style], out, recursive=True)

    assert [item.name for item in flat] == ["a__style.png"]
    assert [item.name for item in deep] == ["a__style.png", "2020/IMG_1__style.png", "2021/IMG_1__style.png"]
    assert deep[1].output == out / "2020" / "IMG_1__style.png"


def test_name_collision_is_refused_before_work(runner, style, tmp_path, monkeypatch):
    """It refuses, with exit 2 and both names, two inputs that would write the same output file."""
    no_network(monkeypatch)
    photos = tmp_path / "photos"
    jpg = make_image(photos / "x.jpg")
    png = make_image(photos / "x.png")
    out = tmp_path / "out"
    result = batch(runner, photos, "--style", style, "-o", out)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {jpg} with style {style} and {png} with style {style} would both be "
                                  f"written to {out / 'x__style.png'}; rename one of the files or run them "
                                  "separately")
    assert not out.exists()


def test_files_styles_and_format(runner, tmp_path):
    """It takes files as inputs, gives every content every style, and writes --format jpg."""
    a = make_image(tmp_path / "in" / "a.png", seed=1)
    b = make_image(tmp_path / "in" / "b.webp", seed=2)
    s1 = make_image(tmp_path / "s1.png", size=(40, 40), seed=3)
    s2 = make_image(tmp_path / "s2.png", size=(40, 40), seed=4)
    out = tmp_path / "out"
    result = batch(runner, a, b, "--style", s1, "--style", s2, "-o", out, "--format", "JPG")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a__s1.jpg", "a__s2.jpg", "b__s1.jpg", "b__s2.jpg"]
    assert {Image.open(p).format for p in out.iterdir()} == {"JPEG"}


@pytest.mark.parametrize("case", ["no images", "missing input", "output is input", "missing style"])
def test_bad_arguments_stop_before_work(runner, style, tmp_path, monkeypatch, case):
    """It stops before loading the network when the arguments cannot make a batch."""
    no_network(monkeypatch)
    photos = tmp_path / "photos"
    photos.mkdir()
    if case != "no images":
        photo_folder(photos, count=1)
    inputs, styles, out = [photos], [style], tmp_path / "out"
    if case == "missing input":
        inputs.append(tmp_path / "gone.png")
    elif case == "output is input":
        out = photos
    elif case == "missing style":
        styles = [tmp_path / "nope.jpg"]
    args = [*inputs, *sum((["--style", s] for s in styles), []), "-o", out]
    result = batch(runner, *args)
    expected = {
        "no images": (2, f"Error: no images found in {photos} (folders give their files ending in .bmp .gif "
                         ".jpeg .jpg .png .tif .tiff .webp); add --recursive to look in subfolders"),
        "missing input": (1, f"Error: input {tmp_path / 'gone.png'} does not exist; check the path"),
        "output is input": (2, f"Error: the output folder {photos} is also an input folder, so results would "
                               "be read as inputs on a re-run; choose another -o"),
        "missing style": (1, f"Error: style image {tmp_path / 'nope.jpg'} does not exist; check the path"),
    }[case]
    assert (result.exit_code, error_line(result)) == expected


def test_progress_bars(runner, style, tmp_path):
    """It shows the item bar on stderr, per-image step bars with --progress steps, and nothing with --quiet."""
    photos = tmp_path / "photos"
    photo_folder(photos, count=2)
    base = ["batch", str(photos), "--style", str(style), "--weights", "random", "--size", "32",
            "--steps", "2", "--checkpoint-every", "0"]
    items = runner.invoke(nst, base + ["-o", str(tmp_path / "o1")])
    assert "batch: 100%" in items.stderr and "2/2" in items.stderr and "done=2" in items.stderr
    assert "p0__style.png" not in items.stderr and "step/s" not in items.stderr
    steps = runner.invoke(nst, base + ["-o", str(tmp_path / "o2"), "--progress", "steps"])
    # Each image's bar is named after it, with the precision where it is not fp32 ("p0__style.png (bf16):"
    # on a CPU with native bf16, where --precision auto picks it).
    assert re.search(r"p0__style\.png( \(\w+\))?:", steps.stderr), steps.stderr
    assert re.search(r"p1__style\.png( \(\w+\))?:", steps.stderr) and "step/s" in steps.stderr
    quiet = runner.invoke(nst, base + ["-o", str(tmp_path / "o3"), "--quiet"])
    assert "%" not in quiet.stderr and "batch: 2 done, 0 skipped, 0 failed of 2 items" in quiet.stderr
    assert items.stdout == steps.stdout.replace("o2", "o1") == quiet.stdout.replace("o3", "o1")


def test_reused_style_gives_the_same_image(content, style):
    """It gives the same result from a reused PreparedStyle as from the style path, even starting from the style."""
    config = Config(weights="random", size=32, steps=3, init="style", checkpoint_every=0)
    prepared = api.PreparedStyle(style)
    first = api.stylize(content, prepared, config=config).image
    second = api.stylize(content, prepared, config=config).image
    fresh = api.stylize(content, style, config=config).image
    assert (first == fresh).all() and (second == fresh).all()


def test_style_blend_is_refused(runner, style, tmp_path, monkeypatch):
    """It has no --style-blend, and refuses blend weights from a config file, which a batch would ignore."""
    no_network(monkeypatch)
    photo_folder(tmp_path / "photos", count=1)
    flag = batch(runner, tmp_path / "photos", "--style", style, "-o", tmp_path / "out", "--style-blend", "1")
    assert flag.exit_code == 2
    assert error_line(flag) == "Error: --style-blend does not apply to 'nst batch' (see 'nst batch --help')"
    assert "--style-blend" not in runner.invoke(nst, ["batch", "--help"]).stdout
    config = tmp_path / "blend.yaml"
    config.write_text("style_blend: [1]\n")
    result = batch(runner, tmp_path / "photos", "--style", style, "-o", tmp_path / "out", "--config", config)
    assert result.exit_code == 2
    assert error_line(result) == ("Error: 'style_blend' does not apply to nst batch: every style is used on its "
                                  "own; drop it (or run nst stylize to blend styles)")
    assert not (tmp_path / "out").exists()


def plan_folder(tmp_path, monkeypatch):
    """Three photos, one of them already done; computing anything fails the test."""
    no_network(monkeypatch)
    monkeypatch.setattr(single, "stylize", lambda *a, **k: pytest.fail("stylized"))
    photos, out = tmp_path / "photos", tmp_path / "out"
    photo_folder(photos, count=3)
    make_image(out / "p1__style.png")
    return photos, out


def test_plan_lists_every_item_with_shard_and_status(runner, style, tmp_path, monkeypatch):
    """It prints every item with its shard and done/todo, and a summary per shard, computing nothing."""
    photos, out = plan_folder(tmp_path, monkeypatch)
    shards = {f"p{i}__style.png": shard_of(f"p{i}__style.png", 2) for i in range(3)}

    result = batch(runner, photos, "--style", style, "-o", out, "--shard", "all/2", "--plan")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{'done' if i == 1 else 'todo'}  {shards[f'p{i}__style.png']}/2  {out / f'p{i}__style.png'}  "
        f"{photos / f'p{i}.png'}  {style}" for i in range(3)]
    per_shard, left = [], []
    for k in (1, 2):
        names = [name for name, shard in shards.items() if shard == k]
        done = names.count("p1__style.png")
        per_shard.append(f"shard {k}/2: {done} done, {len(names) - done} to do")
        left += [str(k)] if len(names) > done else []
    assert result.stderr.splitlines() == [
        "; ".join(["plan: 1 done, 2 to do of 3 items", *per_shard, f"shards with work left: {','.join(left)}"])]
    assert sorted(p.name for p in out.iterdir()) == ["p1__style.png"]


def test_plan_json_one_shard_and_no_shard(runner, style, tmp_path, monkeypatch):
    """It prints one JSON object per item with --json, only shard K's items with K/N, and honours --overwrite."""
    photos, out = plan_folder(tmp_path, monkeypatch)
    k = shard_of("p1__style.png", 3)

    one = batch(runner, photos, "--style", style, "-o", out, "--shard", f"{k}/3", "--plan", "--json")
    assert one.exit_code == 0, one.output
    rows = json_lines(one)
    assert {"input": str(photos / "p1.png"), "style": str(style), "output": str(out / "p1__style.png"),
            "shard": k, "shards": 3, "status": "done"} in rows
    assert all(row["shard"] == k and row["shards"] == 3 for row in rows)
    assert [row["output"] for row in rows] == [
        str(out / f"p{i}__style.png") for i in range(3) if shard_of(f"p{i}__style.png", 3) == k]
    todo = sum(row["status"] == "todo" for row in rows)
    assert one.stderr.splitlines() == [f"plan: 1 done, {todo} to do of {len(rows)} items in shard {k}/3"]

    everything = batch(runner, photos, "--style", style, "-o", out, "--plan", "--json", "--overwrite")
    assert [(row["shard"], row["shards"], row["status"]) for row in json_lines(everything)] == [(None, None, "todo")] * 3
    assert everything.stderr.splitlines() == ["plan: 0 done, 3 to do of 3 items"]


def test_plan_in_an_array_task_shows_that_task(runner, style, tmp_path, monkeypatch):
    """It plans the task's own shard under --shard auto inside a SLURM array task."""
    photos, out = plan_folder(tmp_path, monkeypatch)
    for name, value in {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3",
                        "SLURM_ARRAY_TASK_COUNT": "3"}.items():
        monkeypatch.setenv(name, value)
    result = batch(runner, photos, "--style", style, "-o", out, "--shard", "auto", "--plan")
    assert result.exit_code == 0, result.output
    mine = [i for i in range(3) if shard_of(f"p{i}__style.png", 3) == 3]
    assert [line.split("  ")[2] for line in result.stdout.splitlines()] == [str(out / f"p{i}__style.png") for i in mine]
    assert all(line.split("  ")[1] == "3/3" for line in result.stdout.splitlines())
    assert result.stderr.splitlines()[-1].endswith(f"of {len(mine)} {'item' if len(mine) == 1 else 'items'} in shard 3/3")


def test_finished_batch_loads_nothing(runner, style, tmp_path, monkeypatch):
    """It skips every item of a finished batch without loading the network or opening the styles."""
    photos = tmp_path / "photos"
    photo_folder(photos, count=2)
    out = tmp_path / "out"
    first = batch(runner, photos, "--style", style, "-o", out)
    assert first.exit_code == 0, first.output
    no_network(monkeypatch)
    monkeypatch.setattr(styles_module, "PreparedStyle", lambda *a, **k: pytest.fail("style opened"))
    again = batch(runner, photos, "--style", style, "-o", out, "--json")
    assert again.exit_code == 0, again.output
    assert [row["status"] for row in json_lines(again)] == ["skipped", "skipped"]
    assert "batch: 0 done, 2 skipped, 0 failed of 2 items" in again.stderr.splitlines()


def test_interrupt_just_after_the_save_counts_the_item_done(runner, style, tmp_path, monkeypatch):
    """It reports an item whose output was written just before Ctrl-C as done, not as unwritten."""
    photos = tmp_path / "photos"
    photo_folder(photos)
    out = tmp_path / "out"
    real_save = single.save_image

    def save_then_ctrl_c(image, path, **kwargs):
        real_save(image, path, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(single, "save_image", save_then_ctrl_c)
    result = batch(runner, photos, "--style", style, "-o", out, "--json")

    assert result.exit_code == 130
    assert error_line(result) == (f"Error: interrupted just after writing {out / 'p0__style.png'}; run the same "
                                  "command again to resume")
    assert [(row["output"], row["status"]) for row in json_lines(result)] == [(str(out / "p0__style.png"), "done")]
    assert "batch: 1 done, 0 skipped, 0 failed of 3 items, 2 not run" in result.stderr.splitlines()
    assert [p.name for p in out.iterdir()] == ["p0__style.png"]


def test_batch_over_the_memory_budget_leaves_no_output_folder(runner, style, tmp_path, monkeypatch):
    """It refuses a batch over --max-memory with exit 2 before loading the network or making -o's folder."""
    no_network(monkeypatch)
    make_image(tmp_path / "photos" / "a.png")
    result = runner.invoke(nst, ["batch", str(tmp_path / "photos"), "--style", str(style), "-o",
                                 str(tmp_path / "out"), *FAST, "--max-memory", "1MB"])
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: --size 32 does not fit the 1 MB --max-memory allows even in tiles")
    assert not (tmp_path / "out").exists()
