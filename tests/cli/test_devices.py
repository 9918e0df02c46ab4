"""Every command on one device: the CPU in CI, a GPU with `NSTCLI_TEST_DEVICE=cuda python -m pytest
tests/cli/test_devices.py` (README, "On a GPU").

The same tests run on either. On an accelerator each run is compared with the same run on the CPU
(tiny inputs, a few steps: the results must be close, not equal, since the kernels differ), the
images the engine and the training loop report must live on the device, and the memory estimate of
a scale is compared with what the device really allocated. On the CPU the CPU run is its own
reference, and the checks that need an accelerator's allocator are skipped.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import half_masks, make_image

from fastnets import tiny_model
from nstcli.config.commands import ApplySettings
from nstcli.cli.main import nst
from nstcli.config.fields import load_config
from nstcli.image.io import load_image
from nstcli.reports import Callback

DEVICE = os.environ.get("NSTCLI_TEST_DEVICE", "cpu")
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip("NSTCLI_TEST_DEVICE=cuda but torch sees no CUDA device", allow_module_level=True)
if DEVICE not in ("cpu", "cuda", "mps"):
    pytest.skip(f"NSTCLI_TEST_DEVICE={DEVICE!r} is not cpu, cuda or mps", allow_module_level=True)
ACCELERATOR = DEVICE != "cpu"
# Tiny runs on the untrained network: a few steps, shallow layers where depth adds nothing.
QUICK = {"weights": "random", "size": 32, "steps": 3, "checkpoint_every": 0}
QUICK_FLAGS = ["--weights", "random", "--size", "32", "--steps", "3", "--checkpoint-every", "0", "--quiet"]
# Mean absolute difference (pixels in [0, 1]) allowed between the device's result and the CPU's:
# cuDNN's algorithms and TF32 round differently from oneDNN, and bf16 keeps 8 bits.
CLOSE = {"fp32": 0.03, "bf16": 0.06}


class OnDevice(Callback):
    """Records the device of every image the run reports."""

    def __init__(self):
        self.devices = set()

    def on_step(self, report):
        self.devices.add(report.image.device.type)


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def assert_close_to_cpu(device_file, cpu_file, precision="fp32"):
    difference = float(np.abs(pixels(device_file) - pixels(cpu_file)).mean())
    assert difference <= CLOSE[precision], f"{DEVICE} vs cpu: mean |difference| {difference:.4f}"


def stylize_on(device, tmp_path, content, style, name, precision="fp32", **keys):
    from nstcli import api

    config = load_config(None, {**QUICK, "device": device, "precision": precision, **keys})
    watcher = OnDevice()
    result = api.stylize(content, style, tmp_path / f"{name}_{device}.png", config, callbacks=[watcher])
    return result, watcher.devices


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_stylize_runs_on_the_device_close_to_the_cpu(tmp_path, content, style, precision):
    result, devices = stylize_on(DEVICE, tmp_path, content, style, "plain", precision)
    assert devices == {DEVICE} and result.device.startswith(DEVICE) and result.precision == precision
    assert pixels(result.output).shape == (21, 32, 3)
    if ACCELERATOR:
        reference, _ = stylize_on("cpu", tmp_path, content, style, "plain", precision)
        assert_close_to_cpu(result.output, reference.output, precision)


def test_tiles_run_on_the_device_close_to_the_cpu(tmp_path, content, style):
    keys = {"size": 80, "start_size": None, "tile": 48, "steps": 2, "style_layers": ("relu1_1", "relu2_1"),
            "content_layers": ("relu2_1",)}
    result, devices = stylize_on(DEVICE, tmp_path, content, style, "tiled", **keys)
    assert devices == {DEVICE} and "tiles" in json.dumps(result.summary())
    if ACCELERATOR:
        reference, _ = stylize_on("cpu", tmp_path, content, style, "tiled", **keys)
        assert_close_to_cpu(result.output, reference.output)


def test_masks_run_on_the_device_close_to_the_cpu(tmp_path, content, style):
    from nstcli import api
    from nstcli.stylize.masks import SpatialControl

    left, right = half_masks(tmp_path / "masks")
    second = make_image(tmp_path / "second.png", size=(40, 40), seed=5)
    outputs = {}
    for device in {DEVICE, "cpu"}:
        watcher = OnDevice()
        config = load_config(None, {**QUICK, "device": device})
        result = api.stylize(content, [style, second], tmp_path / f"masked_{device}.png", config,
                             callbacks=[watcher], masks=SpatialControl([left, right]))
        assert watcher.devices == {device}
        outputs[device] = result.output
    assert_close_to_cpu(outputs[DEVICE], outputs["cpu"])


def test_batch_on_the_device(tmp_path, runner, style):
    from nstcli.stylize.batch import run_batch
    from nstcli.stylize.batch_plan import plan_batch

    photos = tmp_path / "photos"
    for index in range(2):
        make_image(photos / f"p{index}.png", size=(40, 30), seed=20 + index)
    result = runner.invoke(nst, ["batch", str(photos), "--style", str(style), "-o", str(tmp_path / "out"),
                                 "--device", DEVICE, "--json", *QUICK_FLAGS])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["done", "done"]
    watcher = OnDevice()
    items = plan_batch([photos], [style], tmp_path / "again")
    done = list(run_batch(items, load_config(None, {**QUICK, "device": DEVICE}), callbacks=[watcher]))
    assert [item.status for item in done] == ["done", "done"] and watcher.devices == {DEVICE}


def test_video_on_the_device(tmp_path, runner, style):
    from nstcli.fast.video import stylize_video

    frames = tmp_path / "frames"
    for index in range(3):
        make_image(frames / f"f{index}.png", size=(40, 30), seed=7)  # a still clip: only the kernels differ
    flags = ["--weights", "random", "--size", "32", "--steps", "3", "--quiet"]
    result = runner.invoke(nst, ["video", str(frames), str(style), "-o", str(tmp_path / "out/"), "--device", DEVICE,
                                 "--frame-steps", "1", "--json", *flags])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["frames"] == 3 and len(list((tmp_path / "out").glob("*.png"))) == 3
    model = tiny_model(tmp_path / "tiny.safetensors")
    results = {device: stylize_video(frames, model, tmp_path / f"fast_{device}", ApplySettings(device=device))
               for device in {DEVICE, "cpu"}}
    assert results[DEVICE].frames == 3
    assert_close_to_cpu(tmp_path / f"fast_{DEVICE}" / "frame_000003.png", tmp_path / "fast_cpu" / "frame_000003.png")


def train_on(device, tmp_path, precision="fp32"):
    from nstcli.fast.train import TrainSettings, train

    photos = tmp_path / "photos"
    for index in range(4):
        make_image(photos / f"p{index}.png", size=(48, 40), seed=30 + index)
    config = load_config(None, {"weights": "random", "style_weight": 10, "device": device,
                                "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1"})
    settings = TrainSettings(steps=3, batch_size=2, crop_size=32, width=8, blocks=1, precision=precision,
                             checkpoint_every=0, preview_every=0)
    watcher = OnDevice()
    result = train(make_image(tmp_path / "style.png", size=(48, 48), seed=2), photos,
                   tmp_path / f"net_{device}_{precision}.safetensors", config, settings, callbacks=[watcher])
    return result, watcher.devices


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_on_the_device_close_to_the_cpu(tmp_path, precision):
    from nstcli.fast import modelfile

    result, devices = train_on(DEVICE, tmp_path, precision)
    assert devices == {DEVICE} and result.steps == 3
    net, info = modelfile.load(result.output)
    assert info.training["precision"] == precision
    if ACCELERATOR:
        reference, _ = train_on("cpu", tmp_path, precision)
        photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        theirs, _ = modelfile.load(reference.output)
        with torch.no_grad():
            difference = float((net(photo).clamp(0, 1) - theirs(photo).clamp(0, 1)).abs().mean())
        assert difference <= CLOSE[precision], difference


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_apply_on_the_device_close_to_the_cpu(tmp_path, runner, precision):

    model = tiny_model(tmp_path / "tiny.safetensors")
    photo = make_image(tmp_path / "photo.png", size=(60, 44), seed=4)
    written = {}
    for device in {DEVICE, "cpu"}:
        out = tmp_path / f"applied_{device}.png"
        result = runner.invoke(nst, ["apply", str(model), str(photo), "-o", str(out), "--device", device,
                                     "--precision", precision, "--quiet"])
        assert result.exit_code == 0, result.output
        written[device] = out
    assert pixels(written[DEVICE]).shape == (44, 60, 3)
    assert_close_to_cpu(written[DEVICE], written["cpu"], precision)


def test_apply_in_tiles_on_the_device_close_to_the_cpu(tmp_path):
    from nstcli.fast.apply import load_model, stylize_image

    model = tiny_model(tmp_path / "tiny.safetensors")
    photo = load_image(make_image(tmp_path / "photo.png", size=(128, 96), seed=6))
    tiled = {}
    for device in {DEVICE, "cpu"}:
        net, _ = load_model(model, device)
        assert {p.device.type for p in net.parameters()} == {device}
        tiled[device] = stylize_image(net, photo, tile=64)
        assert tiled[device].shape == (1, 3, 96, 128) and tiled[device].device.type == "cpu"
    assert float((tiled[DEVICE] - tiled["cpu"]).abs().mean()) <= CLOSE["fp32"]


def test_export_of_a_network_trained_on_the_device(tmp_path, runner):
    pytest.importorskip("onnx")
    result, _ = train_on(DEVICE, tmp_path)
    exported = runner.invoke(nst, ["export", str(result.output), "-o", str(tmp_path / "net.onnx")])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "net.onnx").stat().st_size > 1000


@pytest.mark.skipif(DEVICE != "cuda", reason="needs CUDA's allocator statistics")
def test_the_memory_estimate_is_within_30_percent_of_what_cuda_allocates(tmp_path):
    """One 512 px scale: the estimate (memory.untiled_need) against torch.cuda.max_memory_allocated,
    counted from after the network is loaded (its weights are not part of a scale's need)."""
    from nstcli import api
    from nstcli.network import memory
    from nstcli.network.load import layers_needed
    from nstcli.stylize.single_plan import load_network_for as load_network

    size = 512
    content = make_image(tmp_path / "content.png", size=(size, size * 3 // 4), seed=1)
    style = make_image(tmp_path / "style.png", size=(size, size), seed=2)
    config = load_config(None, {"weights": "random", "size": size, "start_size": None, "steps": 5,
                                "checkpoint_every": 0, "device": "cuda", "precision": "fp32"})
    load_network(config, torch.device("cuda"))
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    api.stylize(content, style, tmp_path / "out.png", config)
    torch.cuda.synchronize()
    used = torch.cuda.max_memory_allocated() - before
    need = memory.untiled_need((size * 3 // 4, size), (size, size), layers_needed(config), config.content_layers,
                               config.optimizer, config.steps, "cuda").total
    assert 0.7 * used <= need <= 1.3 * used, f"estimate {need / 2**20:.0f} MiB, allocated {used / 2**20:.0f} MiB"
