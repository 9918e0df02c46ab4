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


def test_a_writer_that_carries_on_past_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    """It never renames a file into place after one of its writes failed, even if the writer ignored it."""
    target = tmp_path / "x.bin"
    DiskFills(monkeypatch, target)

    def careless_writer(handle):
        try:
            handle.write(b"z" * 1000)
        except OSError:
            pass

    with pytest.raises(WriteError, match=FULL):
        writes.write_file(target, careless_writer)
    assert list(tmp_path.iterdir()) == []


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
    assert error_line(result) == (f"Error: cannot write {folder / 'preview_000004.png'} ({FULL}); free some space; "
                                  f"the checkpoint of step 3 is kept in "
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
@pytest.mark.parametrize("every, written", [("0", "m.safetensors"), ("1", f"m_training/{CHECKPOINT}")])
def test_train_on_a_real_full_disk(tmp_path, every, written):
    """`nst train` writing its model (or its first checkpoint) onto a disk with no room left: one line,
    not the catch-all (a SafetensorError, a C++ assertion from torch.save), exit 1, nothing left on
    that disk. Nothing is faked: the files go to a full tmpfs."""
    data = photos(tmp_path / "photos", 4)
    style = make_image(tmp_path / "painting.png", size=(48, 48), seed=7)
    disk = tmp_path / "full"
    done, left = on_a_full_disk(disk, ["train", str(style), "--data", str(data), "-o", str(disk / "m.safetensors"),
                                       "--steps", "2", "--checkpoint-every", every, *TRAIN_FAST], cwd=tmp_path,
                                env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert lines == [f"Error: cannot write {disk / written} ({FULL}); free some space; no checkpoint was "
                     "kept, so the next run starts over"], done.stderr
    assert "Traceback" not in done.stderr and left == []


# --- nst stylize ------------------------------------------------------------------------------


def _stylize(runner, content, style, out, *extra):
    return runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST, *extra])


def test_stylize_output_write_fails(runner, content, style, tmp_path, monkeypatch):
    """A full disk at the result: one line, no partial result; the checkpoints written before are kept."""
    out = tmp_path / "results" / "out.png"
    DiskFills(monkeypatch, out)
    result = _stylize(runner, content, style, out, "--checkpoint-every", "1")
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} ({FULL}); free some space or choose another -o path"
    assert not out.exists() and leftovers(tmp_path) == []
    assert sorted(path.name for path in (out.parent / "out_checkpoints").iterdir()) == [
        "step_0001.png", "step_0002.png", "step_0003.png"]


def test_stylize_checkpoint_write_fails(runner, content, style, tmp_path, monkeypatch):
    """The second checkpoint cut short: the run stops there, naming the first, which is kept whole."""
    out = tmp_path / "out.png"
    folder = tmp_path / "out_checkpoints"
    DiskFills(monkeypatch, folder / "step_0002.png")
    result = _stylize(runner, content, style, out, "--checkpoint-every", "1")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {folder / 'step_0002.png'} ({FULL}); free some space or "
                                  f"choose another -o path; the checkpoints written before it are kept, the last "
                                  f"is {folder / 'step_0001.png'}")
    assert [path.name for path in folder.iterdir()] == ["step_0001.png"] and not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("extra, name", [("--contact-sheet", "out_progress.png"), ("--loss-curve", "out_loss.png")])
def test_stylize_sheet_or_curve_write_fails(runner, content, style, tmp_path, monkeypatch, extra, name):
    """The result is written before the contact sheet and the loss curve: it is kept when they fail."""
    out = tmp_path / "out.png"
    DiskFills(monkeypatch, tmp_path / name)
    result = _stylize(runner, content, style, out, "--checkpoint-every", "1", extra)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {tmp_path / name} ({FULL}); free some space or choose "
                                  "another -o path")
    assert out.is_file() and not (tmp_path / name).exists() and leftovers(tmp_path) == []


def test_stylize_into_a_folder_turned_read_only(runner, content, style, tmp_path, monkeypatch):
    """A folder that becomes read-only during the run (checked writable at the start)."""
    out = tmp_path / "ro" / "out.png"
    out.parent.mkdir()
    import tempfile
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # the start's writability probe passes, the write does not
        if dir is not None and Path(dir) == out.parent and kwargs.get("prefix", "").startswith(".out."):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = _stylize(runner, content, style, out)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} (Read-only file system); choose another -o path"
    assert list(out.parent.iterdir()) == []


def test_stylize_folder_removed_during_the_run(runner, content, style, tmp_path, monkeypatch):
    """The output's folder deleted while the run computes: one line saying so."""
    out = tmp_path / "made" / "out.png"
    from nstcli.optim import run as runs

    real_execute = runs.Run.execute

    def execute(self, *args, **kwargs):
        image = real_execute(self, *args, **kwargs)
        shutil.rmtree(out.parent)
        return image

    monkeypatch.setattr(runs.Run, "execute", execute)
    result = _stylize(runner, content, style, out)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {out} (its folder {out.parent} was removed during the run); "
                                  "choose another -o path")
    assert not out.parent.exists()


def test_stylize_checkpoint_folder_removed_during_the_run(runner, content, style, tmp_path, monkeypatch):
    """The checkpoint folder deleted after its first checkpoint is an error, not silently made again
    (the contact sheet reads every checkpoint back)."""
    out = tmp_path / "out.png"
    folder = tmp_path / "out_checkpoints"
    from nstcli.optim.callbacks import CheckpointSaver

    real = CheckpointSaver.on_step

    def on_step(self, report):
        if report.step == 2:
            shutil.rmtree(folder)
        real(self, report)

    monkeypatch.setattr(CheckpointSaver, "on_step", on_step)
    result = _stylize(runner, content, style, out, "--checkpoint-every", "1", "--contact-sheet")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {folder / 'step_0002.png'} (its folder {folder} was removed "
                                  f"during the run); choose another -o path; the checkpoints written before it are "
                                  f"kept, the last is {folder / 'step_0001.png'}")
    assert not out.exists()


def test_reconstruct_sheet_write_fails(runner, content, tmp_path, monkeypatch):
    out = tmp_path / "sheet.png"
    DiskFills(monkeypatch, out)
    result = runner.invoke(nst, ["reconstruct", "content", str(content), "-o", str(out), "--all", "--weights",
                                 "random", "--size", "32", "--steps", "1", "--quiet"])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} ({FULL}); free some space or choose another -o path"
    assert not out.exists() and leftovers(tmp_path) == []


# --- nst batch --------------------------------------------------------------------------------


def test_batch_stops_at_a_full_disk_and_keeps_what_is_finished(runner, tmp_path, style, monkeypatch):
    """The second of three items meets a full disk: the first stays, the third is not computed."""
    photos_folder = tmp_path / "photos"
    for index in range(3):
        make_image(photos_folder / f"p{index}.png", size=(48, 32), seed=10 + index)
    out = tmp_path / "results"
    DiskFills(monkeypatch, out / "p1__style.png")
    result = runner.invoke(nst, ["batch", str(photos_folder), "--style", str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {out / 'p1__style.png'} ({FULL}); free some space or choose "
                                  "another -o path; the batch stopped there: finished outputs are kept and running "
                                  "the same command again skips them")
    assert sorted(path.name for path in out.iterdir()) == ["p0__style.png"] and leftovers(tmp_path) == []
    assert "batch: 1 done, 0 skipped, 0 failed of 3 items" in result.stderr


# --- nst video --------------------------------------------------------------------------------


def test_video_encoding_fails_keeps_every_frame(runner, tmp_path, style, monkeypatch):
    """A full disk while encoding the output: no partial video, every finished frame kept to encode again."""
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from clips import make_clip
    from helpers import VIDEO_FAST

    source = make_clip(tmp_path / "clip.mp4", frames=2)
    out = tmp_path / "out.mp4"
    DiskFills(monkeypatch, out)
    result = runner.invoke(nst, ["video", str(source), str(style), "-o", str(out), *VIDEO_FAST])
    assert result.exit_code == 1
    frames = tmp_path / "out_frames"
    assert error_line(result) == (f"Error: cannot write {out} ({FULL}); free some space; 2 of 2 frames are kept in "
                                  f"{frames}; run the same command again to continue")
    assert not out.exists() and sorted(p.name for p in frames.glob("*.png")) == ["frame_000001.png",
                                                                                 "frame_000002.png"]
    assert [name for name in leftovers(tmp_path) if not name.startswith("out_frames/.nst-")] == []


def test_video_frame_log_write_fails(runner, tmp_path, style, monkeypatch):
    """The frame log appended a line at a time: a full disk there keeps the frame just written."""
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from clips import make_clip
    from helpers import VIDEO_FAST

    source = make_clip(tmp_path / "clip.mp4", frames=3)
    frames = tmp_path / "out_frames"
    DiskFills(monkeypatch, frames / ".nst-frames.jsonl")
    result = runner.invoke(nst, ["video", str(source), str(style), "-o", str(tmp_path / "out.mp4"), *VIDEO_FAST])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {frames / '.nst-frames.jsonl'} ({FULL}); free some space; "
                                  f"1 of 3 frames are kept in {frames}; run the same command again to continue")
    assert sorted(p.name for p in frames.glob("*.png")) == ["frame_000001.png"]


def test_video_work_folder_that_cannot_be_made(runner, tmp_path, style, monkeypatch):
    """The work folder's record cannot be written (read-only): one line, and no work folder left."""
    pytest.importorskip("av")
    from clips import make_clip
    from helpers import VIDEO_FAST

    source = make_clip(tmp_path / "clip.mp4", frames=2)
    frames = tmp_path / "out_frames"
    DiskFills(monkeypatch, frames / ".nst-video.json", code=errno.EROFS)
    result = runner.invoke(nst, ["video", str(source), str(style), "-o", str(tmp_path / "out.mp4"), *VIDEO_FAST])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {frames / '.nst-video.json'} (Read-only file system); "
                                  "choose another -o path")
    assert not (tmp_path / "out.mp4").exists()


# --- nst apply, nst export --------------------------------------------------------------------


def test_apply_one_image_write_fails(runner, tmp_path, monkeypatch):
    model = tiny_model(tmp_path / "tiny.safetensors")
    photo = make_image(tmp_path / "photo.png", size=(48, 32))
    out = tmp_path / "out.png"
    DiskFills(monkeypatch, out)
    result = runner.invoke(nst, ["apply", str(model), str(photo), "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write {out} ({FULL}); free some space or choose another -o path; "
                                  "stopped there: finished outputs are kept and running the same command again "
                                  "skips them")
    assert not out.exists() and leftovers(tmp_path) == []


def test_apply_folder_stops_at_a_full_disk(runner, tmp_path, monkeypatch):
    model = tiny_model(tmp_path / "tiny.safetensors")
    folder = tmp_path / "photos"
    for index in range(3):
        make_image(folder / f"p{index}.png", size=(48, 32), seed=index)
    out = tmp_path / "out"
    DiskFills(monkeypatch, out / "p1.png")
    result = runner.invoke(nst, ["apply", str(model), str(folder), "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: cannot write {out / 'p1.png'} ({FULL}); ")
    assert sorted(path.name for path in out.iterdir()) == ["p0.png"] and leftovers(tmp_path) == []


def test_apply_to_a_video_write_fails(runner, tmp_path, monkeypatch):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from clips import make_clip

    model = tiny_model(tmp_path / "tiny.safetensors")
    source = make_clip(tmp_path / "clip.mp4", frames=3)
    out = tmp_path / "out.mp4"
    DiskFills(monkeypatch, out)
    result = runner.invoke(nst, ["video", str(source), "--model", str(model), "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} ({FULL}); free some space or choose another -o path"
    assert not out.exists() and leftovers(tmp_path) == []


def test_export_write_fails(runner, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    model = tiny_model(tmp_path / "tiny.safetensors")
    out = tmp_path / "m.onnx"
    DiskFills(monkeypatch, out)
    result = runner.invoke(nst, ["export", str(model), "-o", str(out)])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write {out} ({FULL}); free some space or choose another -o path"
    assert not out.exists() and leftovers(tmp_path) == []


# --- nst weights ------------------------------------------------------------------------------


def test_weights_import_cache_write_fails(runner, tmp_path, isolated_cache, monkeypatch):
    """A full disk while filling the cache: one line pointing at NSTCLI_CACHE, and no partial cache file."""
    from nstcli.network import sources, weights

    path = tmp_path / "vgg19.pth"
    torch.save(weights.random_state_dict(seed=5), path)
    target = isolated_cache / sources.CACHE_FILE
    DiskFills(monkeypatch, target)
    result = runner.invoke(nst, ["weights", "import", str(path), "--network", "torchvision"])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write the weights cache {target} ({FULL}); free some space or "
                                  "set NSTCLI_CACHE to a writable folder")
    assert list(isolated_cache.iterdir()) == []


def test_weights_fetch_download_write_fails(runner, tmp_path, isolated_cache, monkeypatch):
    """A full disk while the download arrives: said as a full disk (not a network failure), nothing left."""
    from nstcli.network import sources

    source = tmp_path / "served.pth"
    source.write_bytes(os.urandom(3 << 20))
    monkeypatch.setattr(sources, "IMAGENET_URL", source.as_uri())
    DiskFills(monkeypatch, lambda path: path.parent == isolated_cache and path.name.startswith(".download-"))
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith(f"Error: cannot write the weights download {isolated_cache}/.download-")
    assert line.endswith(f".pth ({FULL}); free some space or set NSTCLI_CACHE to a writable folder")
    assert list(isolated_cache.iterdir()) == []
