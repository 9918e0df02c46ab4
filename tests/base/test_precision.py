"""The run's precision: how auto chooses, what runs in it, and what stays fp32."""

import json
import warnings

import pytest
import torch

from nstcli.reports import Callback
from nstcli import api, runtime
from nstcli.optim import engine
from nstcli.cli.main import nst
from nstcli.config.fields import Config, load_config
from nstcli.errors import ConfigError, NSTWarning
from nstcli.network.features import VGGFeatures
from nstcli.terms.settings import LossSettings
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.network.weights import random_state_dict

from helpers import FAST, error_line, standard_terms

CPU = torch.device("cpu")
LAYERS = ("relu1_1", "relu2_1", "relu2_2")


@pytest.fixture
def emulated_cpu(monkeypatch):
    """A CPU like an AVX-512 one without AVX512_BF16: oneDNN says bf16 works, the instructions are not there."""
    monkeypatch.setattr(runtime, "mkldnn_bf16", lambda: True)
    monkeypatch.setattr(runtime, "native_bf16_instructions", lambda: False)


@pytest.fixture
def native_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "mkldnn_bf16", lambda: True)
    monkeypatch.setattr(runtime, "native_bf16_instructions", lambda: True)


def test_auto_never_picks_bf16_without_native_support(emulated_cpu):
    """It picks fp32 for auto on a CPU whose bf16 would be emulated, even though oneDNN reports support."""
    assert runtime.cpu_has_native_bf16() is False
    assert runtime.resolve_precision("auto", CPU) == "fp32"


def test_auto_picks_bf16_with_native_support(native_cpu):
    """It picks bf16 for auto on a CPU with bf16 instructions that oneDNN uses."""
    assert runtime.resolve_precision("auto", CPU) == "bf16"


def test_native_instructions_without_onednn_are_not_enough(monkeypatch):
    """It stays fp32 when the CPU has the instructions but this torch's oneDNN cannot use bf16."""
    monkeypatch.setattr(runtime, "mkldnn_bf16", lambda: False)
    monkeypatch.setattr(runtime, "native_bf16_instructions", lambda: True)
    assert runtime.resolve_precision("auto", CPU) == "fp32"


@pytest.mark.parametrize("flags, native", [({"avx2", "fma"}, False), ({"avx512f", "avx512bw", "avx512vl"}, False),
                                           ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True)])
def test_cpu_flags_decide_the_instructions(monkeypatch, flags, native):
    """It reads the bf16 dot-product flags (AVX512_BF16, AMX-BF16), not AVX-512 itself."""
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: set(flags))
    monkeypatch.setattr(torch._C, "_cpu", None, raising=False)  # no torch probes: the flags alone
    assert runtime.native_bf16_instructions() is native


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_on_cuda_follows_the_gpu_generation(monkeypatch, capability, expected):
    """It picks bf16 on Ampere and later GPUs, fp32 on older ones (which emulate bf16)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert runtime.resolve_precision("auto", torch.device("cuda")) == expected


def test_auto_on_mps_is_fp32():
    """It keeps fp32 on Apple's MPS, where bf16 has not been measured."""
    assert runtime.resolve_precision("auto", torch.device("mps")) == "fp32"


def test_explicit_precisions(native_cpu):
    """It honours an explicit fp32 even where bf16 is native, and bf16 where asked."""
    assert runtime.resolve_precision("fp32", CPU) == "fp32"
    assert runtime.resolve_precision("bf16", CPU) == "bf16"


def test_emulated_bf16_runs_with_a_warning(emulated_cpu):
    """It allows bf16 on a CPU without native bf16 (same results, slower) and says so."""
    with pytest.warns(NSTWarning, match="emulated and slower than fp32"):
        assert runtime.resolve_precision("bf16", CPU) == "bf16"


def test_fp16_on_cpu_is_refused():
    """It refuses fp16 on a CPU with a usage error that names the alternatives."""
    with pytest.raises(ConfigError, match="use --precision auto, bf16 or fp32"):
        runtime.resolve_precision("fp16", CPU)


def test_precision_is_a_config_key_defaulting_to_auto(tmp_path):
    """It is a config key (auto by default) that files and flags set."""
    assert Config().precision == "auto"
    path = tmp_path / "c.yaml"
    path.write_text("precision: BF16\n")
    assert load_config(path).precision == "bf16"
    with pytest.raises(ConfigError, match="'precision' must be one of auto, fp32, bf16, fp16"):
        load_config(None, {"precision": "fp64"})


@pytest.mark.parametrize("value", ["fp64", "half", ""])
def test_bad_precision_flag_exits_2(runner, content, style, tmp_path, value):
    """It rejects an unknown --precision with one Error: line and exit code 2."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--precision", value])
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: --precision must be one of auto, fp32, bf16, fp16")


def test_fp16_on_cpu_exits_2(runner, content, style, tmp_path):
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--device", "cpu", "--precision", "fp16"])
    assert result.exit_code == 2
    assert "fp16 but the device is a CPU" in error_line(result)
    assert not (tmp_path / "o.png").exists()


# --- what runs in bf16 and what stays fp32 ------------------------------------------------------------


def bf16_network():
    return VGGFeatures(random_state_dict(0), LAYERS, precision="bf16").to(memory_format=torch.channels_last)


def test_bf16_network_computes_in_bf16_and_returns_fp32():
    """Its convolutions hold bf16 weights; every activation it returns is fp32, close to the fp32 network's."""
    network = bf16_network()
    reference = VGGFeatures(random_state_dict(0), LAYERS)
    assert {p.dtype for p in network.body.parameters()} == {torch.bfloat16}
    assert network.precision == "bf16" and reference.precision == "fp32"
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        low, exact = network(image), reference(image)
    for name in LAYERS:
        assert low[name].dtype == torch.float32
        error = (low[name] - exact[name]).norm() / exact[name].norm()
        assert error < 0.03, (name, float(error))  # bf16 keeps 8 bits of mantissa: about 0.4 % per value


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_bf16_run_keeps_image_optimiser_and_losses_fp32(optimizer):
    """It keeps the optimised image, the optimiser's state and every loss in fp32 while the network runs bf16."""
    network = bf16_network()
    generator = torch.Generator().manual_seed(1)
    content, style = (torch.rand(1, 3, 24, 24, generator=generator) for _ in range(2))
    config = Config(content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1"), weights="random")
    terms = standard_terms(config.pick(LossSettings), network, content, [style])
    seen = []

    class Watch(Callback):
        def on_step(self, report):
            seen.append(report)

    result = engine.optimize(network, content, terms, OptimizerSettings(optimizer, 0.02 if optimizer == "adam" else 1.0),
                             steps=3, callbacks=[Watch()])
    assert result.image.dtype == torch.float32
    assert [r.precision for r in seen] == ["bf16"] * 3
    assert all(isinstance(v, float) for r in seen for v in r.terms.values())
    image = content.clone()
    total, parts = engine.evaluate(terms, network(image), image)
    assert total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in parts.values())
    pixels = content.permute(0, 2, 3, 1).clone().requires_grad_(True)
    opt = engine.make_optimizer(OptimizerSettings(optimizer, 0.02 if optimizer == "adam" else 1.0), pixels)

    def closure():
        opt.zero_grad(set_to_none=True)
        view = pixels.permute(0, 3, 1, 2)
        value = engine.evaluate(terms, network(view), view)[0] * pixels.numel()
        value.backward()
        assert pixels.grad.dtype == torch.float32
        return value.detach()

    for _ in range(3):
        opt.step(closure)
    assert pixels.dtype == torch.float32
    if optimizer == "adam":
        state = opt.state[pixels]
        assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32
    else:
        steps, changes = opt.pairs
        assert len(steps) > 0 and steps.dtype == changes.dtype == torch.float32


def test_network_cache_is_per_precision():
    """It loads one network per precision, not the fp32 one for a bf16 run."""
    config = Config(weights="random", content_layers=("relu1_1",), style_layers=("relu1_1",))
    fp32 = api.load_network(config, CPU, precision="fp32")
    bf16 = api.load_network(config, CPU, precision="bf16")
    assert fp32 is not bf16 and (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert api.load_network(config, CPU, precision="bf16") is bf16


# --- end to end -----------------------------------------------------------------------------------


def test_stylize_bf16_end_to_end(runner, content, style, tmp_path, emulated_cpu):
    """It runs --precision bf16 on a CPU (emulated here), reports it in --json and on the bar."""
    out = tmp_path / "o.png"
    args = ["stylize", str(content), str(style), "-o", str(out), "--weights", "random", "--size", "32",
            "--steps", "3", "--checkpoint-every", "0", "--precision", "bf16", "--json"]
    result = runner.invoke(nst, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["precision"] == "bf16" and data["device"] == "cpu"
    assert out.exists()
    first = result.stderr.splitlines()
    assert any(line.startswith("Warning: --precision bf16") for line in first)
    assert "stylize (bf16):" in result.stderr


def test_auto_reports_fp32_where_bf16_is_emulated(runner, content, style, tmp_path, emulated_cpu):
    """It runs and reports fp32 under auto on a CPU without native bf16; the bar does not mention it."""
    args = ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), "--weights", "random",
            "--size", "32", "--steps", "2", "--checkpoint-every", "0", "--json"]
    result = runner.invoke(nst, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["precision"] == "fp32"
    assert "stylize:" in result.stderr and "(fp32)" not in result.stderr and "bf16" not in result.stderr


def test_auto_runs_bf16_where_native(runner, content, style, tmp_path, native_cpu):
    """It runs the network in bf16 under auto where the (faked) CPU computes bf16 natively, without a warning."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["precision"] == "bf16"
    assert "Warning: --precision" not in result.stderr


def test_reconstruct_bf16(runner, content, tmp_path, emulated_cpu):
    """It runs `nst reconstruct` in the chosen precision too."""
    result = runner.invoke(nst, ["reconstruct", "content", str(content), "-o", str(tmp_path / "r.png"),
                                 "--weights", "random", "--size", "32", "--steps", "2", "--quiet",
                                 "--checkpoint-every", "0", "--precision", "bf16", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["precision"] == "bf16"


def test_batch_bf16(runner, content, style, tmp_path, emulated_cpu):
    """It runs every item of `nst batch` in the chosen precision."""
    outdir = tmp_path / "out"
    result = runner.invoke(nst, ["batch", str(content), "--style", str(style), "-o", str(outdir), *FAST,
                                 "--precision", "bf16", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["status"], line["precision"]) for line in lines] == [("done", "bf16")]
    assert result.stderr.count("Warning: --precision bf16") == 1  # once for the batch, not per item


def test_tiled_scale_runs_in_bf16(content, style, tmp_path, emulated_cpu):
    """It runs a scale tile by tile in the chosen precision, and says so in each step report."""
    seen = []

    class Watch(Callback):
        def on_step(self, report):
            seen.append(report)

    config = Config(weights="random", size=48, steps=2, start_size=None, tile=32, checkpoint_every=0,
                    precision="bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NSTWarning)
        result = api.stylize(content, style, tmp_path / "t.png", config=config, callbacks=[Watch()])
    assert result.precision == "bf16" and result.tiling[0] is not None
    assert seen and all(r.precision == "bf16" and r.tiles > 1 for r in seen)


def test_video_bf16(runner, tmp_path, style, emulated_cpu):
    """It runs every frame of `nst video` in the chosen precision, says so in --json, and warns once."""
    from clips import make_clip

    source = make_clip(tmp_path / "clip.mkv", frames=2)
    result = runner.invoke(nst, ["video", str(source), str(style), "-o", str(tmp_path / "out.mkv"), "--weights", "random",
                                 "--size", "32", "--steps", "3", "--quiet", "--frame-steps", "2", "--precision", "bf16", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["precision"] == "bf16"
    assert result.stderr.count("Warning: --precision bf16") == 1
