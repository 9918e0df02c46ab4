"""Every write of every command under a full disk, a read-only folder and a folder removed mid-run.

Each case injects the fault where the bytes are written (faults.py: the write takes part of its
bytes, then ENOSPC), not only where the file is opened, and checks the same four things: one
`Error:` line naming the file and what to do, exit 1, no partial or temporary file, and whatever
was finished before it kept. `test_train_on_a_real_full_disk` fakes nothing: a tmpfs with no room.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from faults import DiskFills, ReadOnly, leftovers, needs_full_disk, on_a_full_disk
from fastnets import TRAIN_FAST, photos, tiny_model
from helpers import FAST, error_line, make_image
from nstcli import writes
from nstcli.cli.main import nst
from nstcli.errors import ImageError, WriteError
from nstcli.fast.checkpoint import CHECKPOINT

SRC = Path(__file__).resolve().parents[1] / "src"
FULL = "No space left on device"


# --- the helper itself --------------------------------------------------------------------------


def test_a_write_cut_short_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    """It keeps the file a failed write would have replaced, and removes the half-written temporary."""
    target = tmp_path / "keep.bin"
    target.write_bytes(b"before")
    DiskFills(monkeypatch, target)
    with pytest.raises(WriteError) as caught:
        writes.write_file(target, b"x" * 100_000)
    assert str(caught.value) == f"cannot write {target} ({FULL}); free some space or choose another -o path"
    assert caught.value.errno == errno.ENOSPC and caught.value.path == target
    assert target.read_bytes() == b"before" and leftovers(tmp_path) == []


@pytest.mark.parametrize("code, why, todo", [
    (errno.EROFS, "Read-only file system", "choose another -o path"),
    (errno.EACCES, "Permission denied", "choose another -o path"),
    (errno.EDQUOT, "Disk quota exceeded", "free some space or choose another -o path"),
])
def test_each_reason_says_what_to_do(tmp_path, monkeypatch, code, why, todo):
    target = tmp_path / "out.png"
    ReadOnly(monkeypatch, tmp_path, code)
    with pytest.raises(WriteError, match="^" + f"cannot write {target} ({why}); {todo}".replace("(", r"\(")
                       .replace(")", r"\)") + "$"):
        writes.write_file(target, b"data")
    assert not target.exists()


def test_a_folder_removed_during_the_run(tmp_path):
    folder = tmp_path / "gone"
    folder.mkdir()
    folder.rmdir()
    with pytest.raises(WriteError) as caught:
        writes.write_file(folder / "out.png", b"data", elsewhere=None)
    assert str(caught.value) == f"cannot write {folder / 'out.png'} (its folder {folder} was removed during the run)"


def test_without_elsewhere_the_fix_is_where_it_is(tmp_path, monkeypatch):
    ReadOnly(monkeypatch, tmp_path, errno.EROFS)
    with pytest.raises(WriteError, match=rf"\(Read-only file system\); make {tmp_path} writable$"):
        writes.write_file(tmp_path / "m.bin", b"data", elsewhere=None)


def test_a_writer_that_wraps_the_failure_still_tells_the_reason(tmp_path, monkeypatch):
    """It reports the OSError under a library's own exception (PyAV's callback error, a C++ assertion)."""
    target = tmp_path / "x.bin"
    DiskFills(monkeypatch, target)

    def wrapping_writer(handle):
        try:
            handle.write(b"y" * 1000)
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] file write failed") from None

    with pytest.raises(WriteError, match=FULL):
        writes.write_file(target, wrapping_writer)
    assert leftovers(tmp_path) == [] and not target.exists()


def test_a_writers_own_error_is_not_taken_for_a_disk_fault(tmp_path):
    """It passes on an error the writer raised without a failed write (a bug or bad data), and cleans up."""
    with pytest.raises(ValueError, match="bad data"):
        writes.write_file(tmp_path / "x.bin", lambda handle: (_ for _ in ()).throw(ValueError("bad data")))
    assert list(tmp_path.iterdir()) == []


def test_no_clobber_is_still_an_image_error(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"there")
    with pytest.raises(ImageError, match="already exists; remove it or drop --no-clobber"):
        writes.write_file(target, b"new", no_clobber=True)
    assert target.read_bytes() == b"there" and leftovers(tmp_path) == []


# --- nst train ----------------------------------------------------------------------------------


def _train(runner, tmp_path, *extra):
    data = photos(tmp_path / "photos", 4)
    style = make_image(tmp_path / "painting.png", size=(48, 48), seed=7)
    output = tmp_path / "models" / "m.safetensors"
    args = ["train", str(style), "--data", str(data), "-o", str(output), *TRAIN_FAST, *extra]
    return runner.invoke(nst, args), output, args


def test_train_model_write_fails_keeps_the_finished_training(runner, tmp_path, monkeypatch):
    """A full disk at the model file: one line, no partial model, and the finished training kept as a
    checkpoint, from which the same command only writes the model."""
    fault = DiskFills(monkeypatch, tmp_path / "models" / "m.safetensors")
    result, output, args = _train(runner, tmp_path, "--steps", "4", "--checkpoint-every", "3")
    assert result.exit_code == 1
    checkpoint = output.with_name("m_training") / CHECKPOINT
    assert error_line(result) == (f"Error: cannot write {output} ({FULL}); free some space; the finished training "
                                  f"is kept in {checkpoint}: run the same command again to write the model")
    assert fault.hits and not output.exists() and leftovers(tmp_path) == []
    assert torch.load(checkpoint, weights_only=True)["step"] == 4
    monkeypatch.setattr(writes, "_write_all", fault.real)  # space freed
    again = runner.invoke(nst, [*args, "--steps", "4", "--checkpoint-every", "3", "--json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed_from"] == 4 and output.is_file() and not checkpoint.exists()


def test_train_checkpoint_write_fails_keeps_the_previous_checkpoint(runner, tmp_path, monkeypatch):
    """The second checkpoint cut short: the first one stays whole and the line says to continue from it."""
    checkpoint = tmp_path / "models" / "m_training" / CHECKPOINT
    DiskFills(monkeypatch, checkpoint, skip=1)
    result, output, _ = _train(runner, tmp_path, "--steps", "8", "--checkpoint-every", "3")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {checkpoint} ({FULL}); free some space; the checkpoint of "
                                  f"step 3 is kept in {checkpoint}: run the same command again to continue from it")
    assert torch.load(checkpoint, weights_only=True)["step"] == 3
    assert not output.exists() and leftovers(tmp_path) == []


def test_train_preview_write_fails(runner, tmp_path, monkeypatch):
    """A preview that cannot be written stops training with the checkpoint kept, as a checkpoint does."""
    folder = tmp_path / "models" / "m_training"
    DiskFills(monkeypatch, folder / "preview_000004.png")
    result, output, _ = _train(runner, tmp_path, "--steps", "6", "--checkpoint-every", "3", "--preview-every", "2")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {folder / 'preview_000004.png'} ({FULL}); free some space "
                                  f"or choose another -o path; the checkpoint of step 3 is kept in "
                                  f"{folder / CHECKPOINT}: run the same command again to continue from it")
    assert sorted(path.name for path in folder.iterdir()) == [CHECKPOINT, "preview_000002.png"]


def test_train_into_a_read_only_folder(runner, tmp_path, monkeypatch):
    """A folder that turns read-only before the model is written: the reason, and no checkpoint to claim."""
    ReadOnly(monkeypatch, tmp_path / "models", errno.EROFS)
    monkeypatch.setattr("nstcli.fast.train.check_outputs", lambda output, inputs=(): Path(output).with_name(
        f"{Path(output).stem}_training"))  # it turned read-only after the check at the start
    (tmp_path / "models").mkdir()
    result, output, _ = _train(runner, tmp_path, "--steps", "2", "--checkpoint-every", "0")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {output} (Read-only file system); make {output.parent} "
                                  "writable; no checkpoint was kept, so the next run starts over")


@needs_full_disk
def test_train_on_a_real_full_disk(tmp_path):
    """`nst train` writing its model onto a disk with no room left: one line (not the catch-all), exit 1,
    nothing left on that disk. Nothing is faked: the model goes to a full tmpfs."""
    data = photos(tmp_path / "photos", 4)
    style = make_image(tmp_path / "painting.png", size=(48, 48), seed=7)
    disk = tmp_path / "full"
    done, left = on_a_full_disk(disk, ["train", str(style), "--data", str(data), "-o", str(disk / "m.safetensors"),
                                       "--steps", "2", "--checkpoint-every", "0", *TRAIN_FAST], cwd=tmp_path,
                                env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert lines == [f"Error: cannot write {disk / 'm.safetensors'} ({FULL}); free some space; no checkpoint was "
                     "kept, so the next run starts over"], done.stderr
    assert "Traceback" not in done.stderr and left == []
