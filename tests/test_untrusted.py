"""What a new user and a hostile file meet first: paths, permissions, formats, usage errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nstcli.image import io as images
from nstcli.network import weights
from nstcli.cli.main import nst
from nstcli.config.fields import load_config
from nstcli.errors import ConfigError, ImageError

from conftest import FAST, error_line, make_image

SRC = Path(__file__).resolve().parent.parent / "src"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


# ---- files written get ordinary permissions ------------------------------------------------------

@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_umask_mode(runner, content, style, tmp_path, umask, mask, expected):
    """It writes the output, checkpoints, contact sheet and loss curve with the umask's mode, not 0600."""
    umask(mask)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--weights", "random",
                                 "--size", "32", "--steps", "2", "--checkpoint-every", "1", "--quiet",
                                 "--contact-sheet", "--loss-curve"])
    assert result.exit_code == 0, result.output
    written = [out, tmp_path / "out_progress.png", tmp_path / "out_loss.png",
               *sorted((tmp_path / "out_checkpoints").iterdir())]
    assert len(written) == 5
    assert {path.name: mode(path) for path in written} == {path.name: expected for path in written}


def test_replaced_file_keeps_its_mode(runner, content, style, tmp_path, umask):
    """It gives a replaced output the mode the old file had, as writing over it in place would."""
    out = make_image(tmp_path / "out.png")
    out.chmod(0o664)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o664


def test_batch_outputs_and_weights_cache_get_the_umask_mode(runner, content, style, tmp_path, umask,
                                                             isolated_cache):
    """It writes batch outputs and the imported weights cache as 0644 under umask 022."""
    result = runner.invoke(nst, ["batch", str(content), "--style", str(style), "-o", str(tmp_path / "out"),
                                 *FAST])
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "out" / "content__style.png") == 0o644
    import torch

    source = tmp_path / "vgg.pth"
    torch.save(weights.random_state_dict(seed=1), source)
    imported = runner.invoke(nst, ["weights", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    assert mode(isolated_cache / weights.CACHE_FILE) == 0o644


# ---- an output that is an input -------------------------------------------------------------------

def _spell(kind: str, target: Path, tmp_path: Path, monkeypatch) -> str:
    """The same file as `target`, written another way."""
    if kind == "same":
        return str(target)
    if kind == "dot":
        monkeypatch.chdir(target.parent)
        return f"./{target.name}"
    if kind == "symlink":
        link = tmp_path / "link.png"
        link.symlink_to(target)
        return str(link)
    link = tmp_path / "hard.png"
    os.link(target, link)
    return str(link)


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_output_that_is_an_input_is_refused(runner, content, style, tmp_path, monkeypatch, spelling, role):
    """It refuses, exit 2 and before computing, an -o naming the content or a style image in any spelling."""
    monkeypatch.setattr("nstcli.stylize.single.load_network", lambda *a, **k: pytest.fail("network loaded"))
    target = content if role == "content" else style
    before = target.read_bytes()
    output = _spell(spelling, target, tmp_path, monkeypatch)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", output, *FAST])
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"Error: output {output} is also an input")
    assert line.endswith("; writing it would replace that input: choose another -o")
    assert target.read_bytes() == before


def test_reconstruct_refuses_its_input_as_output(runner, content, tmp_path, monkeypatch):
    """It refuses nst reconstruct -o naming its own input (here through ./), exit 2."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(nst, ["reconstruct", "style", str(content), "-o", f"./{content.name}", *FAST])
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: output ./{content.name} is also an input (the same file as "
                                  f"{content}); writing it would replace that input: choose another -o")


def test_batch_refuses_an_output_that_is_one_of_its_inputs(runner, content, style, tmp_path):
    """It refuses a batch where one item would write over another item's content image, exit 2."""
    out = tmp_path / "out"
    earlier = make_image(out / "content__style.png", seed=5)  # a result given back as an input
    before = earlier.read_bytes()
    result = runner.invoke(nst, ["batch", str(content), str(earlier), "--style", str(style), "-o", str(out),
                                 "--overwrite", *FAST])
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: output {earlier} is also an input; writing it would replace "
                                  "that input: choose another -o")
    assert earlier.read_bytes() == before


def test_refuse_overwriting_inputs_helper(tmp_path):
    """It accepts distinct files and paths that do not exist yet, and refuses the same file twice."""
    a, b = make_image(tmp_path / "a.png"), make_image(tmp_path / "b.png")
    images.refuse_overwriting_inputs(tmp_path / "new.png", [a, b])
    images.refuse_overwriting_inputs([tmp_path / "x.png", tmp_path / "y.png"], [a, tmp_path / "gone.png"])
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="is also an input"):
        images.refuse_overwriting_inputs([tmp_path / "new.png", tmp_path / "sub" / ".." / "b.png"], [a, b])


# ---- only the documented formats, never an external program ---------------------------------------

EPS = textwrap.dedent("""\
    %!PS-Adobe-3.0 EPSF-3.0
    %%BoundingBox: 0 0 32 32
    %%EndComments
    newpath 0 0 moveto 32 32 lineto stroke
    showpage
    %%EOF
    """).encode()


def test_postscript_named_jpg_is_not_decoded(tmp_path, monkeypatch):
    """It refuses a PostScript file named .jpg without asking Ghostscript (or any program) to read it."""
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("program started"))
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: started.append(a) or pytest.fail("program"))
    path = tmp_path / "photo.jpg"
    path.write_bytes(EPS)
    with pytest.raises(ImageError) as info:
        images.open_image(path)
    assert str(info.value) == (f"image {path} is not an image Pillow can read; give a PNG, JPEG, WebP, TIFF, "
                               "BMP or GIF file")
    assert started == []


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("TIFF", ".tif"),
                                         ("BMP", ".bmp"), ("GIF", ".gif")])
def test_documented_formats_still_open(tmp_path, fmt, suffix):
    """It still opens every documented input format."""
    from PIL import Image

    path = tmp_path / f"x{suffix}"
    Image.open(make_image(tmp_path / "src.png")).save(path, format=fmt)
    assert images.open_image(path).size == (48, 32)


def test_a_ppm_image_is_refused(tmp_path):
    """It refuses a format Pillow reads but the README does not list (PPM)."""
    from PIL import Image

    path = tmp_path / "x.png"
    Image.open(make_image(tmp_path / "src.png")).save(path, format="PPM")
    with pytest.raises(ImageError, match="is not an image Pillow can read"):
        images.open_image(path)


# ---- nstcli's checks, not click's -----------------------------------------------------------------

def _deny_reading(monkeypatch, denied: Path):
    """Make `denied` unreadable the way os.access reports it (tests run as root, which reads anything)."""
    real = os.access

    def access(path, how, *args, **kwargs):
        if how & os.R_OK and os.path.abspath(path) == str(denied):
            return False
        return real(path, how, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_unreadable_image_is_a_run_failure(runner, content, style, tmp_path, monkeypatch):
    """It reports an unreadable image in its own words with exit 1, not click's usage error."""
    _deny_reading(monkeypatch, style)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: image {style} cannot be read (permission denied)"


def test_unreadable_image_fails_only_its_batch_item(runner, content, style, tmp_path, monkeypatch):
    """It fails only the unreadable input's item in nst batch; the other item is written."""
    other = make_image(tmp_path / "other.png", seed=4)
    _deny_reading(monkeypatch, other)
    out = tmp_path / "out"
    result = runner.invoke(nst, ["batch", str(content), str(other), "--style", str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert (out / "content__style.png").is_file() and not (out / "other__style.png").exists()
    assert f"failed: {other} with style {style}: image {other} cannot be read (permission denied)" in result.stderr
    assert "batch: 1 done, 0 skipped, 1 failed of 2 items" in result.stderr


@pytest.mark.e2e
def test_weights_fifo_does_not_hang(content, style, tmp_path):
    """It refuses a FIFO as weights at once (a subprocess, so a hang fails the test instead of blocking it)."""
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "nstcli", "stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
         "--weights", str(fifo), "--quiet"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 1
    assert done.stderr == (f"Error: weights file {fifo} is not a regular file; give a .pth/.pt/.safetensors "
                           "file\n")


def test_symlink_loops_are_named(runner, content, style, tmp_path):
    """It says 'symbolic link loop' for a looping weights path, batch output folder, image, config and -o folder."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST[2:],
                                 "--weights", str(loop)])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: weights file {loop} is a symbolic link loop; point it at a "
                                  ".pth/.pt/.safetensors file")
    batch = runner.invoke(nst, ["batch", str(content), "--style", str(style), "-o", str(loop), *FAST])
    assert batch.exit_code == 2
    assert error_line(batch) == f"Error: output folder {loop} is a symbolic link loop; give a folder to -o"
    image = runner.invoke(nst, ["stylize", str(loop), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert image.exit_code == 1
    assert error_line(image) == f"Error: image {loop} is a symbolic link loop; point it at an image file"
    config = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--config", str(loop)])
    assert config.exit_code == 2
    assert error_line(config) == f"Error: config file {loop} is a symbolic link loop; give a .yaml file"
    batch_style = runner.invoke(nst, ["batch", str(content), "--style", str(loop), "-o", str(tmp_path / "b"), *FAST])
    assert batch_style.exit_code == 1
    assert error_line(batch_style) == f"Error: style image {loop} is a symbolic link loop; point it at an image file"
    inside = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(loop / "o.png"), *FAST])
    assert inside.exit_code == 1
    assert error_line(inside) == (f"Error: cannot create the output folder {loop}: {loop} is a symbolic link "
                                  "loop; choose another -o path")


# ---- values: the flag or the key, and huge integers -----------------------------------------------

def test_flag_values_name_the_flag_and_yaml_values_the_key(runner, content, style, tmp_path):
    """It names --steps for a bad flag, and 'steps' with the file for a bad YAML value."""
    out = str(tmp_path / "o.png")
    flag = runner.invoke(nst, ["stylize", str(content), str(style), "-o", out, "--steps", "many"])
    assert flag.exit_code == 2
    assert error_line(flag) == "Error: --steps must be an integer, got 'many'"
    config = tmp_path / "c.yaml"
    config.write_text("start_size: tiny\n")
    yaml = runner.invoke(nst, ["stylize", str(content), str(style), "-o", out, "--config", str(config)])
    assert yaml.exit_code == 2
    assert error_line(yaml) == (f"Error: 'start_size' must be an integer or empty, got 'tiny' "
                                f"(in config file {config})")


def test_huge_integers_get_the_range_error(runner, content, style, tmp_path):
    """It answers a 5000-digit integer, from YAML or a flag, with the key's range error."""
    config = tmp_path / "c.yaml"
    config.write_text("steps: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == f"'steps' must be at most 10000000, got <5000-digit integer> (in config file {config})"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--seed", "-" + "1" * 5000])
    assert result.exit_code == 2
    assert error_line(result) == "Error: --seed must be at least 0, got <-5000-digit integer>"


def test_quiet_in_a_config_file_says_to_use_the_flag(tmp_path):
    """It refuses 'quiet:' in a config file, saying it is the --quiet flag now."""
    config = tmp_path / "c.yaml"
    config.write_text("quiet: true\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == ("'quiet' is no longer a config key: whether a command draws progress bars is "
                               "the command's business; drop it from the file and give --quiet on the command "
                               f"line (config file {config})")


# ---- usage errors, help, the options each command shows ------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["stylize", "c.png", "s.png"], "Error: Missing option '-o' / '--output'. (see 'nst stylize --help')"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--frobnicate", "3"],
     "Error: No such option '--frobnicate'. (see 'nst stylize --help')"),
    (["batch", "in", "--style", "s.png", "-o", "out", "--format", "gif"],
     "Error: Invalid value for '--format': 'gif' is not one of 'png', 'jpg', 'jpeg', 'webp', 'tif', 'tiff'. "
     "(see 'nst batch --help')"),
    (["ui", "--port", "0"], "Error: Invalid value for '--port': 0 is not in the range 1<=x<=65535. "
                            "(see 'nst ui --help')"),
    # click suggests every close name: `nst styles` (the built-in styles) is one too
    (["stylise"], "Error: No such command 'stylise'. (Did you mean one of: 'styles', 'stylize'?) (see 'nst --help')"),
    (["--bogus"], "Error: No such option '--bogus'. (see 'nst --help')"),
    (["reconstruct", "content", "c.png", "-o", "o.png", "--init", "noise"],
     "Error: --init does not apply to 'nst reconstruct content' (see 'nst reconstruct content --help')"),
    (["batch", "in", "--style", "s.png", "-o", "out", "--style-blend", "1"],
     "Error: --style-blend does not apply to 'nst batch' (see 'nst batch --help')"),
])
def test_usage_errors_are_one_line(runner, args, message):
    """It prints a usage error as exactly one Error: line, exit 2, without click's usage lines."""
    result = runner.invoke(nst, args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_stylize_help_shows_defaults_and_every_output_extension(runner):
    """It shows the defaults of size, steps, start size and checkpoint interval, and .tiff for -o."""
    text = " ".join(runner.invoke(nst, ["stylize", "--help"]).stdout.split())
    text = text[text.index("Options:"):]  # past the description, which mentions --checkpoint-every too
    for flag, default in [("--size", "384"), ("--steps", "150"), ("--start-size", "192"),
                          ("--checkpoint-every", "100"), ("--optimizer", "lbfgs")]:
        after = text[text.index(f"{flag} "):]
        assert f"[default: {default}]" in after[: after.index(" --", 3)], flag
    assert "Output image (.png .jpg .jpeg .webp .tif .tiff)." in text


def _options(runner, *command) -> set[str]:
    lines = runner.invoke(nst, [*command, "--help"]).stdout.splitlines()
    return {word.rstrip(",") for line in lines for word in line.split()[:3] if word.startswith("--")}


def test_each_command_lists_only_what_it_honours(runner):
    """It lists in reconstruct's help only the options reconstruct uses, and no --style-blend in batch's."""
    for kind in ("content", "style"):
        shown = _options(runner, "reconstruct", kind)
        assert {"--size", "--steps", "--optimizer", "--adam-betas", "--lr", "--seed", "--device", "--weights",
                "--pooling", "--padding", "--checkpoint-every", "--all", "--quiet", "--json", "--config"} <= shown
        assert not shown & {"--content-layers", "--style-layers", "--init", "--start-size", "--style-blend",
                            "--content-weight", "--style-weight", "--preserve-color", "--contact-sheet",
                            "--first-steps", "--average", "--style-loss", "--tv-stencil", "--scales-from"}
    batch = _options(runner, "batch")
    assert "--style-blend" not in batch and {"--style-scale", "--quiet", "--size"} <= batch
    assert {"--style-blend", "--init", "--no-clobber", "--quiet"} <= _options(runner, "stylize")


@pytest.mark.parametrize("args, message", [
    (["reconstruct", "content", "{img}", "-o", "{out}", "--layer", "conv1_1", "--all"],
     "Error: --layer and --all contradict each other: --all runs the whole figure (every layer); give one of them"),
    (["reconstruct", "style", "{img}", "-o", "{out}", "--layers", "conv1_1", "--all"],
     "Error: --layers and --all contradict each other: --all runs the whole figure (every growing set of "
     "layers); give one of them"),
    (["reconstruct", "style", "{img}", "-o", "{out}", "--all", "--checkpoint-every", "5"],
     "Error: --checkpoint-every does not apply with --all: the sheet is made of several runs, none of which is "
     "checkpointed; drop one of them"),
    (["reconstruct", "style", "{img}", "-o", "{out}", "--layers", "relu9_9"],
     "Error: --layers has unknown VGG19 layer 'relu9_9'; did you mean 'relu5_4'? valid layers: conv1_1, "),
    (["batch", "{img}", "--style", "{img}", "-o", "{out}", "--quiet", "--progress", "steps"],
     "Error: --quiet and --progress steps contradict each other; give one of them"),
    (["stylize", "{img}", "{img}", "-o", "{out}", "--contact-sheet", "--checkpoint-every", "0"],
     "Error: 'contact_sheet' shows the checkpoints, but 'checkpoint_every' is 0; set checkpoint_every above 0 "
     "or drop contact_sheet"),
])
def test_contradictory_options_are_refused(runner, content, tmp_path, args, message):
    """It refuses options that contradict each other, exit 2, naming both."""
    args = [a.format(img=content, out=tmp_path / "o.png") for a in args]
    result = runner.invoke(nst, args)
    assert result.exit_code == 2
    assert error_line(result).startswith(message)
    assert not (tmp_path / "o.png").exists()


# ---- stale extras ----------------------------------------------------------------------------------

def test_rerun_without_extras_removes_stale_ones(runner, content, style, tmp_path):
    """It removes the previous run's OUT_progress.png and OUT_loss.png when they are not asked for again."""
    out = tmp_path / "out.png"
    base = ["stylize", str(content), str(style), "-o", str(out), "--weights", "random", "--size", "32",
            "--steps", "2", "--checkpoint-every", "1", "--quiet"]
    assert runner.invoke(nst, base + ["--contact-sheet", "--loss-curve"]).exit_code == 0
    sheet, curve = tmp_path / "out_progress.png", tmp_path / "out_loss.png"
    assert sheet.is_file() and curve.is_file()
    assert runner.invoke(nst, base + ["--loss-curve"]).exit_code == 0
    assert not sheet.exists() and curve.is_file()
    assert runner.invoke(nst, base).exit_code == 0
    assert not sheet.exists() and not curve.exists()


# ---- answered before torch is imported ------------------------------------------------------------

def _torch_loaded_after(args: list[str], cwd: Path) -> tuple[int, str, bool]:
    code = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from nstcli.cli.main import nst
        result = CliRunner().invoke(nst, {args!r})
        print(result.exit_code, 'torch' in sys.modules)
        print(result.stderr.strip())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    head, _, stderr = done.stdout.partition("\n")
    code_text, loaded = head.split()
    return int(code_text), stderr.strip(), loaded == "True"


@pytest.mark.e2e
@pytest.mark.parametrize("args, exit_code, start", [
    (["stylize", "missing.png", "s.png", "-o", "o.png"], 1, "Error: image missing.png does not exist"),
    (["stylize", "c.png", "s.png", "-o", "o.gif"], 2, "Error: output o.gif has unknown extension '.gif'"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--steps", "-1"], 2, "Error: --steps must be at least 0"),
    (["stylize", "c.png", "s.png", "-o", "c.png"], 2, "Error: output c.png is also an input"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--weights", "nope.pth"], 1, "Error: weights file nope.pth does"),
    (["reconstruct", "content", "missing.png", "-o", "o.png"], 1, "Error: image missing.png does not exist"),
    (["batch", "missing", "--style", "s.png", "-o", "out"], 1, "Error: input missing does not exist"),
    (["weights", "path", "torchvision"], 1, "Error: no weights at "),
    (["weights", "import", "c.png"], 1, "Error: c.png is not a weights file (it is a PNG image)"),
])
def test_checks_that_need_no_network_come_before_torch(tmp_path, args, exit_code, start):
    """It answers path and option mistakes without importing torch (what made them take seconds)."""
    make_image(tmp_path / "c.png")
    make_image(tmp_path / "s.png", seed=2)
    code, stderr, loaded = _torch_loaded_after(args, tmp_path)
    assert (code, stderr[: len(start)]) == (exit_code, start)
    assert not loaded


# ---- weights commands ------------------------------------------------------------------------------

def test_weights_import_of_a_photo_says_it_is_not_weights(runner, tmp_path, isolated_cache):
    """It says a JPEG given to nst weights import is not a weights file, and installs nothing."""
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.open(make_image(tmp_path / "p.png")).save(photo, format="JPEG")
    result = runner.invoke(nst, ["weights", "import", str(photo)])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: {photo} is not a weights file (it is a JPEG image); give a "
                                  ".pth/.pt/.safetensors file holding a VGG19 state dict")
    assert not (isolated_cache / weights.CACHE_FILE).exists()


def test_weights_path_says_whether_the_file_is_there(runner, tmp_path, isolated_cache):
    """It prints the cache path, exit 1 with what to do while it is missing, exit 0 once it is there."""
    target = isolated_cache / weights.CACHE_FILE
    missing = runner.invoke(nst, ["weights", "path", "torchvision"])
    assert (missing.exit_code, missing.stdout) == (1, f"{target}\n")
    assert error_line(missing) == (f"Error: no weights at {target} yet: run 'nst weights fetch torchvision' "
                                   "(downloads 548 MB once) or 'nst weights import FILE'")
    import torch

    source = tmp_path / "vgg.pth"
    torch.save(weights.random_state_dict(seed=1), source)
    assert runner.invoke(nst, ["weights", "import", str(source)]).exit_code == 0
    present = runner.invoke(nst, ["weights", "path", "torchvision"])
    assert (present.exit_code, present.stdout, present.stderr) == (0, f"{target}\n", "")


def test_reconstruct_draws_nothing_before_a_download_error(runner, content, tmp_path, monkeypatch):
    """It prints only the error line when the weights download fails: no progress bar is drawn first."""
    import urllib.error

    def offline(url, destination, progress=True):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(weights, "fetch", offline)
    for kind in ("content", "style"):
        result = runner.invoke(nst, ["reconstruct", kind, str(content), "-o", str(tmp_path / "o.png"),
                                     "--size", "32", "--steps", "2", "--weights", "torchvision"])
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1, result.stderr
        assert error_line(result).startswith("Error: could not download torchvision's VGG19 (no network)")


def test_an_input_among_the_files_a_run_replaces_is_refused(runner, style, tmp_path):
    """It refuses, exit 2, an input that is an old checkpoint or loss curve of the same -o (the run deletes those)."""
    content = make_image(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    base = ["--weights", "random", "--size", "32", "--steps", "2", "--checkpoint-every", "1", "--quiet"]
    first = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *base, "--loss-curve"])
    assert first.exit_code == 0, first.output
    checkpoint, curve = tmp_path / "out_checkpoints" / "step_0001.png", tmp_path / "out_loss.png"
    for source in (checkpoint, curve):
        again = runner.invoke(nst, ["stylize", str(source), str(style), "-o", str(out), *base])
        assert again.exit_code == 2
        assert error_line(again) == (f"Error: input {source} is one of the files a run into {out} deletes or "
                                     "rewrites (old checkpoints, contact sheet, loss curve); copy it elsewhere "
                                     "first or choose another -o")
        assert source.is_file()
    figure = runner.invoke(nst, ["reconstruct", "content", str(checkpoint), "-o", str(out), *base])
    assert figure.exit_code == 2 and checkpoint.is_file()
    elsewhere = runner.invoke(nst, ["stylize", str(checkpoint), str(style), "-o", str(tmp_path / "next.png"),
                                    *base])
    assert elsewhere.exit_code == 0, elsewhere.output
