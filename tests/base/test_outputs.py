"""The -o path: checked before anything is computed, created when missing, replaced or kept as asked."""

import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from helpers import FAST, error_line, make_image, no_network
from nstcli import api
from nstcli.image import io as images
from nstcli.reports import Callback
from nstcli.cli.main import nst
from nstcli.config.fields import Config
from nstcli.errors import ConfigError, ImageError

NO_STEPS = [*FAST, "--steps", "0"]


@pytest.fixture
def network_refused(monkeypatch):
    """Fail the test if the run gets as far as loading VGG19: the refusal must come first."""
    no_network(monkeypatch)


def stylize(runner, content, style, out, *extra):
    return runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *extra])


def test_missing_parent_folders_are_created(runner, content, style, tmp_path):
    """It creates missing parent folders of the output, several levels deep."""
    out = tmp_path / "a" / "b" / "c" / "out.png"
    result = stylize(runner, content, style, out, *NO_STEPS)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 21)


def test_parent_that_is_a_file(runner, content, style, tmp_path, network_refused):
    """It refuses an output under a regular file, naming the file, with exit 1."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out, folder in [(blocker / "out.png", blocker), (blocker / "a" / "b" / "out.png", blocker / "a" / "b")]:
        result = stylize(runner, content, style, out, *FAST)
        assert result.exit_code == 1
        assert error_line(result) == (f"Error: cannot create the output folder {folder}: {blocker} is a file; "
                                      "choose another -o path")
    assert blocker.read_text() == "x"


def test_unwritable_folder_by_permission_bits(runner, content, style, tmp_path, monkeypatch, network_refused):
    """It refuses a folder the permission bits say it cannot write to."""
    real_access = os.access
    folder = tmp_path / "locked"
    folder.mkdir()
    monkeypatch.setattr(images.os, "access", lambda p, mode: False if str(p) == str(folder) else real_access(p, mode))
    result = stylize(runner, content, style, folder / "out.png", *FAST)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: output folder {folder} is not writable; choose another -o path"


def test_unwritable_folder_found_by_trying(runner, content, style, tmp_path, monkeypatch, network_refused):
    """It refuses a folder where creating a file fails even though os.access says yes (root, read-only mounts)."""
    real_mkstemp = tempfile.mkstemp
    folder = tmp_path / "readonly"
    folder.mkdir()

    def mkstemp(*args, dir=None, **kwargs):
        if str(dir) == str(folder):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = stylize(runner, content, style, folder / "out.png", *FAST)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: output folder {folder} is not writable (Permission denied); "
                                  "choose another -o path")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes regardless of permission bits")
def test_unwritable_folder_for_real(runner, content, style, tmp_path, network_refused):
    """It refuses a folder with its write bit cleared."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = stylize(runner, content, style, folder / "out.png", *FAST)
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: output folder {folder} is not writable; choose another -o path"


@pytest.mark.parametrize("name", ["results", "results.png"])
def test_output_that_is_a_folder(runner, content, style, tmp_path, name, network_refused):
    """It refuses an -o naming an existing folder as a usage error (exit 2), whatever its name ends in."""
    folder = tmp_path / name
    folder.mkdir()
    result = stylize(runner, content, style, folder, *FAST)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: output {folder} is a folder; give a file name such as {folder / 'out.png'}"
    assert list(folder.iterdir()) == []


def test_output_without_extension(runner, content, style, tmp_path, network_refused):
    """It refuses an output name without an extension with exit 2."""
    out = tmp_path / "result"
    result = stylize(runner, content, style, out, *FAST)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: output {out} has unknown extension '(none)'; use one of "
                                  ".png, .jpg, .jpeg, .webp, .tif, .tiff")


def test_existing_output_is_replaced_by_default(runner, content, style, tmp_path):
    """It replaces an existing output file when --no-clobber is not given."""
    out = tmp_path / "out.png"
    out.write_bytes(b"old contents")
    result = stylize(runner, content, style, out, *NO_STEPS)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 21)


def test_no_clobber_refuses_before_computing(runner, content, style, tmp_path, network_refused):
    """It refuses to replace an existing output with --no-clobber, exit 1, before loading anything."""
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    result = stylize(runner, content, style, out, *FAST, "--no-clobber")
    assert result.exit_code == 1
    assert error_line(result) == f"Error: output {out} already exists; remove it or drop --no-clobber"
    assert out.read_bytes() == b"keep me"


def test_no_clobber_writes_a_new_file(runner, content, style, tmp_path):
    """It writes the output normally with --no-clobber when nothing is there."""
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, out, *NO_STEPS, "--no-clobber")
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 21)


def test_no_clobber_keeps_a_file_that_appears_during_the_run(content, style, tmp_path):
    """It keeps a file that another program wrote to the output path while the run was computing."""
    out = tmp_path / "out.png"

    class SomeoneElseWrites(Callback):
        def on_step(self, report):
            out.write_bytes(b"written meanwhile")

    config = Config(weights="random", size=32, steps=1, checkpoint_every=0)
    with pytest.raises(ImageError, match=f"output {out} already exists; remove it or drop --no-clobber"):
        api.stylize(content, style, out, config=config, callbacks=[SomeoneElseWrites()], no_clobber=True)
    assert out.read_bytes() == b"written meanwhile"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_write_leaves_no_file(runner, content, style, tmp_path, monkeypatch):
    """It reports a write that fails at the end (a full disk) and leaves neither output nor temporary file."""
    real_replace = os.replace

    def disk_full(source, target):
        if str(target) == str(tmp_path / "out.png"):
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, out, *NO_STEPS)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} (No space left on device); free some space or choose another -o path"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]


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
    no_network(monkeypatch)
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
