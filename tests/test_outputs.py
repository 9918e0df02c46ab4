"""The -o path: checked before anything is computed, created when missing, replaced or kept as asked."""

import os
import tempfile

import pytest
from PIL import Image

from nstcli.stylize import single
from nstcli import api
from nstcli.image import io as images
from nstcli.optim.callbacks import Callback
from nstcli.cli.main import nst
from nstcli.config.fields import Config
from nstcli.errors import ImageError

from conftest import FAST, error_line

NO_STEPS = [*FAST, "--steps", "0"]


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the run gets as far as loading VGG19: the refusal must come first."""
    monkeypatch.setattr(single, "load_network", lambda *a, **k: pytest.fail("network loaded"))


def stylize(runner, content, style, out, *extra):
    return runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *extra])


def test_missing_parent_folders_are_created(runner, content, style, tmp_path):
    """It creates missing parent folders of the output, several levels deep."""
    out = tmp_path / "a" / "b" / "c" / "out.png"
    result = stylize(runner, content, style, out, *NO_STEPS)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 21)


def test_parent_that_is_a_file(runner, content, style, tmp_path, no_network):
    """It refuses an output under a regular file, naming the file, with exit 1."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out, folder in [(blocker / "out.png", blocker), (blocker / "a" / "b" / "out.png", blocker / "a" / "b")]:
        result = stylize(runner, content, style, out, *FAST)
        assert result.exit_code == 1
        assert error_line(result) == (f"Error: cannot create the output folder {folder}: {blocker} is a file; "
                                      "choose another -o path")
    assert blocker.read_text() == "x"


def test_unwritable_folder_by_permission_bits(runner, content, style, tmp_path, monkeypatch, no_network):
    """It refuses a folder the permission bits say it cannot write to."""
    real_access = os.access
    folder = tmp_path / "locked"
    folder.mkdir()
    monkeypatch.setattr(images.os, "access", lambda p, mode: False if str(p) == str(folder) else real_access(p, mode))
    result = stylize(runner, content, style, folder / "out.png", *FAST)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: output folder {folder} is not writable; choose another -o path"


def test_unwritable_folder_found_by_trying(runner, content, style, tmp_path, monkeypatch, no_network):
    """It refuses a folder where creating a file fails even though os.access says yes (root, read-only mounts)."""
    real_mkstemp = tempfile.mkstemp
    folder = tmp_path / "readonly"
    folder.mkdir()

    def mkstemp(*args, dir=None, **kwargs):
        if str(dir) == str(folder):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(images.tempfile, "mkstemp", mkstemp)
    result = stylize(runner, content, style, folder / "out.png", *FAST)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: output folder {folder} is not writable (Permission denied); "
                                  "choose another -o path")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes regardless of permission bits")
def test_unwritable_folder_for_real(runner, content, style, tmp_path, no_network):
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
def test_output_that_is_a_folder(runner, content, style, tmp_path, name, no_network):
    """It refuses an -o naming an existing folder as a usage error (exit 2), whatever its name ends in."""
    folder = tmp_path / name
    folder.mkdir()
    result = stylize(runner, content, style, folder, *FAST)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: output {folder} is a folder; give a file name such as {folder / 'out.png'}"
    assert list(folder.iterdir()) == []


def test_output_without_extension(runner, content, style, tmp_path, no_network):
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


def test_no_clobber_refuses_before_computing(runner, content, style, tmp_path, no_network):
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

    monkeypatch.setattr(images.os, "replace", disk_full)
    out = tmp_path / "out.png"
    result = stylize(runner, content, style, out, *NO_STEPS)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} (No space left on device)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]
