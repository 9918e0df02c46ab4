"""Failures during a run: non-finite loss, memory exhaustion, Ctrl-C and SIGTERM."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from PIL import Image

import nstcli
from nstcli.stylize import coarse_to_fine, single
from nstcli.terms import builder
from nstcli.cli.main import nst
from nstcli.terms import content as content_module
from nstcli.image.io import load_image

from helpers import FAST, error_line

SRC = str(Path(nstcli.__file__).parents[1])  # run subprocesses on the code under test


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}


def test_infinite_loss_at_first_step(runner, content, style, tmp_path, monkeypatch):
    """It stops on an infinite loss with exit 1 and writes no output when no checkpoint exists yet."""
    real = content_module.content_loss
    monkeypatch.setattr(content_module, "content_loss", lambda f, t: real(f, t) + float("inf"))
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == "Error: the loss became inf at step 1; lower --lr or the loss weights"
    assert not out.exists()


MEMORY_ERRORS = {
    "cuda": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "cpu-cant-allocate": RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
        "to allocate 2863661056 bytes. Error code 12 (Cannot allocate memory)"),
    "cpu-not-enough": RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
        "allocate 2863661056 bytes."),
    "mps": RuntimeError("MPS backend out of memory (MPS allocated: 1.00 GB, other allocations: 2.00 GB)"),
    "python": MemoryError(),
}


@pytest.mark.parametrize("where", ["content_term", "optimize"])
@pytest.mark.parametrize("kind", list(MEMORY_ERRORS))
def test_out_of_memory_is_one_line(runner, content, style, tmp_path, monkeypatch, kind, where):
    """It turns memory exhaustion while computing targets or stepping into one line suggesting a smaller --size."""

    def exhausted(*args, **kwargs):
        raise MEMORY_ERRORS[kind]

    monkeypatch.setattr(builder if where == "content_term" else coarse_to_fine, where, exhausted)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == "Error: out of memory at --size 32; try a smaller --size, or coarse-to-fine (--start-size) to reach it"
    assert not out.exists()


def test_other_runtime_errors_are_not_called_out_of_memory(runner, content, style, tmp_path, monkeypatch):
    """It does not disguise an unrelated RuntimeError as memory exhaustion."""

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(coarse_to_fine, "optimize", broken)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == ("Error: unexpected RuntimeError: shape mismatch (run 'nst --debug ...' for "
                                  "the traceback and report it)")


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_real_allocation_failure(content, style, tmp_path):
    """It reports a real CPU allocation failure (a run at --size 4096 under a 1 GB memory limit) in one line."""
    code = textwrap.dedent("""
        import resource, sys
        import torch  # before the limit: torch's libraries alone reserve much address space
        from nstcli.cli.main import main

        def address_space():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

        limit = address_space() + 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        sys.argv = ["nst", *sys.argv[1:]]
        main()
    """)
    out = tmp_path / "out.png"
    # The first convolution's output at 4096x2731 alone is 2.9 GB.
    done = subprocess.run([sys.executable, "-c", code, "stylize", str(content), str(style), "-o", str(out),
                           "--weights", "random", "--size", "4096", "--steps", "1", "--quiet"],
                          capture_output=True, text=True, env=child_env())
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == "Error: out of memory at --size 4096; try a smaller --size, or coarse-to-fine (--start-size) to reach it"
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_interrupt_before_the_first_step(runner, content, style, tmp_path, monkeypatch):
    """It exits 130 with one line and writes nothing when stopped before optimising began."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(single, "load_network", interrupted)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 130
    assert error_line(result) == "Error: interrupted"
    assert not out.exists()


@contextmanager
def sigint_reaches_children():
    """Start children with SIGINT at its default, as a terminal's foreground process has it.

    A shell starts background jobs with SIGINT ignored, children inherit that, and Python then never
    installs its Ctrl-C handler. A handled signal, unlike an ignored one, is reset to the default
    on exec, so handling it here for the moment of the fork is enough (preexec_fn is unsafe with
    torch's threads running).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@pytest.mark.e2e
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_current_image_and_exits_130(content, style, tmp_path, signum):
    """It saves the current image to the output, says so and exits 130 when sent SIGTERM or SIGINT mid-run."""
    out = tmp_path / "out.png"
    with sigint_reaches_children():
        process = subprocess.Popen(
            [sys.executable, "-m", "nstcli", "stylize", str(content), str(style), "-o", str(out),
             "--weights", "random", "--size", "32", "--steps", "100000", "--checkpoint-every", "1", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    first_checkpoint = tmp_path / "out_checkpoints" / "step_0001.png"
    give_up = time.monotonic() + 600  # a safety net for a hung child, not a speed requirement
    while not first_checkpoint.exists():
        if process.poll() is not None or time.monotonic() > give_up:
            process.kill()
            pytest.fail(f"no checkpoint appeared; stderr: {process.communicate()[1]}")
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=600)

    assert process.returncode == 130, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    found = re.fullmatch(rf"Error: interrupted at step (\d+); saved the current image to {re.escape(str(out))}",
                         errors[0])
    assert found, errors[0]
    assert int(found.group(1)) >= 1
    saved = Image.open(out)
    assert saved.size == (32, 21)
    # The optimised image, not the content image it started from.
    start = (load_image(content, 32)[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    assert not torch.equal(torch.frombuffer(bytearray(saved.convert("RGB").tobytes()), dtype=torch.uint8)
                           .view(21, 32, 3), start)
    # No temporary file survives, even if the signal landed while a checkpoint was being written.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert all(re.fullmatch(r"step_\d{4}\.png", p.name) for p in first_checkpoint.parent.iterdir())
