"""The model file (safetensors + JSON header, never a pickle), nst apply and nst export."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from PIL import Image

from fastnets import TINY, photos, tiny_model
from helpers import error_line, make_image
from nstcli.jobs.shards import shard_of
from nstcli.cli.main import nst
from nstcli.errors import ModelError
from nstcli.fast import apply as fast_apply
from nstcli.fast import modelfile
from nstcli.fast.network import Architecture, TransformNet
from nstcli.image.io import load_image


@pytest.fixture
def model(tmp_path):
    return tiny_model(tmp_path / "tiny.safetensors")


def test_a_model_file_round_trips_with_its_header(tmp_path, model):
    net, info = modelfile.load(model)
    assert info.architecture == TINY and info.style == "tiny" and info.version == modelfile.VERSION
    torch.manual_seed(0)
    image = torch.rand(1, 3, 20, 28)
    again, _ = modelfile.load(model)
    assert torch.equal(net(image), again(image))
    header = json.loads(model.read_bytes()[8:8 + struct.unpack("<Q", model.read_bytes()[:8])[0]])
    meta = json.loads(header["__metadata__"]["nstcli"])
    assert meta["format"] == "nstcli-fast-style" and meta["architecture"] == {"width": 8, "blocks": 1,
                                                                              "upsample": "bilinear"}


def _rewrite_header(path: Path, change) -> Path:
    """The same tensors under a header that `change(meta)` edited (as an older nstcli wrote it)."""
    from safetensors.torch import load_file, save_file

    data = path.read_bytes()
    header = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])
    meta = json.loads(header["__metadata__"]["nstcli"])
    change(meta)
    save_file(load_file(str(path)), str(path), metadata={"nstcli": json.dumps(meta)})
    return path


def test_a_version_1_file_loads_with_the_nearest_neighbour_upsampling_it_was_trained_with(tmp_path, model):
    def as_version_1(meta):
        meta["version"] = 1
        del meta["architecture"]["upsample"]

    old = _rewrite_header(tiny_model(tmp_path / "old.safetensors"), as_version_1)
    net, info = modelfile.load(old)
    assert info.version == 1 and info.architecture == Architecture(8, 1, "nearest")
    modes = [m.mode for m in net.modules() if isinstance(m, torch.nn.Upsample)]
    assert modes == ["nearest", "nearest"]
    new, _ = modelfile.load(model)
    assert [m.mode for m in new.modules() if isinstance(m, torch.nn.Upsample)] == ["bilinear", "bilinear"]
    image = torch.rand(1, 3, 24, 24)
    assert not torch.equal(net(image), new(image))  # same tensors, different upsampling


def test_an_unknown_upsampling_is_a_damaged_header(tmp_path):
    bad = _rewrite_header(tiny_model(tmp_path / "odd.safetensors"),
                          lambda meta: meta["architecture"].update(upsample="cubic"))
    with pytest.raises(ModelError, match="damaged header.*upsample must be one of bilinear, nearest"):
        modelfile.load(bad)


def _safetensors_without_our_header(path):
    from safetensors.torch import save_file

    save_file({"0.weight": torch.zeros(2, 2)}, str(path))
    return path


@pytest.mark.parametrize("make, expected", [
    (lambda p: make_image(p.with_suffix(".png")).rename(p), "it is an image"),
    (lambda p: p.write_text("hello, not a model at all"), "not an nstcli style model"),
    (lambda p: p.write_bytes(b""), "only 0 bytes"),
    (lambda p: p.write_bytes(pickle.dumps({"a": 1}, protocol=4)), "pickle"),
    (lambda p: torch.save({"w": torch.zeros(1)}, p), "zip archive"),
    (_safetensors_without_our_header, "without nstcli's model header"),
    (lambda p: p.write_bytes(tiny_model(p.with_name("good.safetensors")).read_bytes()[:-100]), "damaged"),
])
def test_a_file_that_is_not_a_model_is_one_error_line(tmp_path, runner, make, expected):
    bad = tmp_path / "bad.safetensors"
    make(bad)
    make_image(tmp_path / "photo.png")
    for args in (["apply", str(bad), str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png")],
                 ["export", str(bad), "-o", str(tmp_path / "m.onnx")]):
        result = runner.invoke(nst, args)
        assert result.exit_code == 1, result.output
        assert expected in error_line(result)
    assert not (tmp_path / "out.png").exists()


def test_a_missing_model_is_one_error_line(tmp_path, runner):
    make_image(tmp_path / "photo.png")
    result = runner.invoke(nst, ["apply", str(tmp_path / "none.safetensors"), str(tmp_path / "photo.png"),
                                 "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 1 and "does not exist" in error_line(result)


@pytest.mark.parametrize("storage, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_a_model_stored_in_half_precision_loads_as_fp32_and_is_half_the_size(tmp_path, model, storage, dtype):
    net, info = modelfile.load(model)
    half = modelfile.save(tmp_path / f"{storage}.safetensors", net.state_dict(), info, storage=storage)
    again, _ = modelfile.load(half)
    assert all(value.dtype == torch.float32 for value in again.state_dict().values())
    for name, value in net.state_dict().items():
        assert torch.equal(again.state_dict()[name], value.to(dtype).float()), name
    assert half.stat().st_size < 0.6 * model.stat().st_size


def test_a_model_with_tensors_of_another_type_is_refused(tmp_path, model):
    from safetensors.torch import load_file, save_file

    meta = json.loads(model.read_bytes()[8:8 + struct.unpack("<Q", model.read_bytes()[:8])[0]])["__metadata__"]
    state = load_file(str(model))
    state["out.1.bias"] = state["out.1.bias"].to(torch.int32)
    save_file(state, str(tmp_path / "ints.safetensors"), metadata=meta)
    with pytest.raises(ModelError, match=r"stores out\.1\.bias as 'I32'"):
        modelfile.load(tmp_path / "ints.safetensors")


def test_a_model_with_a_non_finite_weight_is_refused(tmp_path, model):
    net, info = modelfile.load(model)
    state = net.state_dict()
    state["out.1.bias"][1] = float("nan")
    with pytest.raises(ModelError, match="non-finite weights"):
        modelfile.load(modelfile.save(tmp_path / "nan.safetensors", state, info))


def test_a_newer_format_version_says_to_upgrade(tmp_path):
    info = modelfile.ModelInfo(TINY, "x", version=modelfile.VERSION + 1)
    path = modelfile.save(tmp_path / "new.safetensors", TransformNet(TINY).state_dict(), info)
    with pytest.raises(ModelError, match="upgrade nstcli"):
        modelfile.load(path)


def test_apply_one_file_keeps_its_size_or_takes_size(tmp_path, runner, model):
    photo = make_image(tmp_path / "photo.jpg", size=(50, 30), seed=4)
    result = runner.invoke(nst, ["apply", str(model), str(photo), "-o", str(tmp_path / "out.png"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").size == (50, 30)
    result = runner.invoke(nst, ["apply", str(model), str(photo), "-o", str(tmp_path / "big.png"), "--size", "80"])
    assert result.exit_code == 0 and Image.open(tmp_path / "big.png").size == (80, 48)


def test_apply_a_folder_resumes_and_shards(tmp_path, runner, model):
    folder = photos(tmp_path / "in", 6)
    make_image(folder / "sub" / "deeper.png", seed=3)
    out = tmp_path / "out"
    first = runner.invoke(nst, ["apply", str(model), str(folder), "-o", str(out), "--shard", "1/2", "--json"])
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    names = ["photo_%d.png" % i for i in range(6)] + ["sub/deeper.png"]
    assert sorted(r["output"] for r in rows) == sorted(str(out / n) for n in names if shard_of(n, 2) == 1)
    second = runner.invoke(nst, ["apply", str(model), str(folder), "-o", str(out), "--json"])
    statuses = {json.loads(line)["output"]: json.loads(line)["status"] for line in second.stdout.splitlines()}
    assert all(statuses[str(out / n)] == ("skipped" if shard_of(n, 2) == 1 else "done") for n in names)
    assert (out / "sub" / "deeper.png").is_file()


def test_apply_yields_results_in_order_each_after_its_file_is_written(tmp_path, model):
    folder = photos(tmp_path / "in", 5)
    (folder / "photo_2.png").write_text("nope")
    items = fast_apply.plan([folder], tmp_path / "out")
    items[3].output.parent.mkdir(parents=True)
    make_image(items[3].output, seed=9)  # done by an earlier run: skipped
    seen = []
    for result in fast_apply.run(model, items):
        seen.append((result.item.name, result.status))
        assert result.item.output.is_file() == (result.status in ("done", "skipped"))
    assert seen == [("photo_0.png", "done"), ("photo_1.png", "done"), ("photo_2.png", "failed"),
                    ("photo_3.png", "skipped"), ("photo_4.png", "done")]


def test_apply_reports_a_bad_photo_and_goes_on(tmp_path, runner, model):
    folder = photos(tmp_path / "in", 2)
    (folder / "broken.png").write_text("nope")
    result = runner.invoke(nst, ["apply", str(model), str(folder), "-o", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert "1 of 3 images failed" in error_line(result)
    assert (tmp_path / "out" / "photo_0.png").is_file() and (tmp_path / "out" / "photo_1.png").is_file()


def test_apply_does_not_count_a_folder_at_an_output_path_as_done(tmp_path, runner, model):
    folder = photos(tmp_path / "in", 2)
    (tmp_path / "out" / "photo_0.png").mkdir(parents=True)
    result = runner.invoke(nst, ["apply", str(model), str(folder), "-o", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert f"{tmp_path / 'out' / 'photo_0.png'} is a folder, not an image" in result.stderr
    assert "1 of 2 images failed" in error_line(result)
    assert (tmp_path / "out" / "photo_0.png").is_dir() and (tmp_path / "out" / "photo_1.png").is_file()


def test_strength_and_preserve_color(model):
    net, _ = modelfile.load(model)
    torch.manual_seed(1)
    photo = torch.rand(1, 3, 24, 32)
    assert torch.allclose(fast_apply.stylize_image(net, photo, strength=0.0), photo, atol=1e-6)
    full = fast_apply.stylize_image(net, photo)
    half = fast_apply.stylize_image(net, photo, strength=0.5)
    assert torch.allclose(half, (photo + full) / 2, atol=1e-5)
    from nstcli.image.colour import luminance, recombine

    kept = fast_apply.stylize_image(net, photo, preserve_color=True)
    assert torch.allclose(kept, recombine(full, photo), atol=1e-6)  # the content's I and Q, the result's Y
    assert not torch.allclose(luminance(kept), luminance(photo), atol=1e-2)


def test_tiles_normalised_by_the_whole_image_are_closer_than_per_tile_norms(model):
    """Tiles use the instance-norm statistics of the whole (shrunk) image: nearer one pass than tiles
    normalised on their own, which differ tile by tile (seams)."""
    net, _ = modelfile.load(model)
    photo = load_image(make_image(__import__("pathlib").Path(model).with_name("big.png"), size=(200, 136), seed=5))
    whole = fast_apply.run_network(net, photo)
    tiled = fast_apply.run_network(net, photo, tile=96)
    assert tiled.shape == whole.shape
    assert all(norm.recorded is None and not norm.use_recorded for norm in net.norms())
    alone = torch.zeros_like(photo)
    for top, bottom in fast_apply._spans(136, 96, 12):
        for left, right in fast_apply._spans(200, 96, 12):
            with torch.no_grad():
                alone[..., top:bottom, left:right] = net(photo[..., top:bottom, left:right]).clamp(0, 1)
    # Measured: 0.063 against 0.108 with nearest-neighbour upsampling, 0.067 against 0.105 with bilinear
    # (the rest is the shrunk image's statistics against the whole one's).
    assert (tiled - whole).abs().mean() < 0.7 * (alone - whole).abs().mean()
    assert (tiled - whole).abs().mean() < 0.08


def test_odd_sizes_come_back_at_their_size(model):
    net, _ = modelfile.load(model)
    for height, width in ((17, 23), (5, 6), (32, 33)):
        assert net(torch.rand(1, 3, height, width)).shape[-2:] == (height, width)


def test_architecture_is_checked():
    with pytest.raises(Exception, match="--width must be one of"):
        Architecture(width=7).check()


def test_export_matches_pytorch(tmp_path, runner, model):
    ort = pytest.importorskip("onnxruntime")
    result = runner.invoke(nst, ["export", str(model), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "m.onnx")
    net, _ = modelfile.load(model)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["style"] == "tiny"
    torch.manual_seed(2)
    for height, width in ((48, 64), (37, 50)):  # other sizes than the export's sample; one not a multiple of 4
        image = torch.rand(1, 3, height, width)
        (onnx_out,) = session.run(None, {"input": image.numpy()})
        with torch.no_grad():
            expected = net(image).clamp(0, 1).numpy()
        assert onnx_out.shape == expected.shape
        assert abs(onnx_out - expected).max() < 1e-4


def test_export_wants_an_onnx_name(tmp_path, runner, model):
    result = runner.invoke(nst, ["export", str(model), "-o", str(tmp_path / "m.pt")])
    assert result.exit_code == 2 and ".onnx" in error_line(result)


def rewrite_header(path: Path, change) -> Path:
    """Change the JSON header of a safetensors file in place (the tensor bytes kept after it)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])
    return path


def meta(change):
    def edit(header):
        value = json.loads(header["__metadata__"]["nstcli"])
        change(value)
        header["__metadata__"]["nstcli"] = json.dumps(value)
    return edit


def first_tensor(change):
    def edit(header):
        name = next(key for key in header if key != "__metadata__")
        change(header[name])
    return edit


@pytest.mark.parametrize("change", [
    lambda h: h["__metadata__"].update(nstcli=5),
    lambda h: h.update(__metadata__=["nstcli"]),
    meta(lambda m: m.update(architecture=[8, 1])),
    meta(lambda m: m.update(architecture={"width": "8", "blocks": 1})),
    meta(lambda m: m.update(training="long")),
    meta(lambda m: m.update(style=["a", "b"])),
    meta(lambda m: m.update(version="1")),
    first_tensor(lambda t: t.update(shape=5)),
    first_tensor(lambda t: t.update(shape="abc")),
    first_tensor(lambda t: t.update(dtype=7)),
    first_tensor(lambda t: t.update(data_offsets="0-10")),
    lambda h: h.update(extra=[1, 2]),
], ids=["metadata-number", "metadata-list", "architecture-list", "width-string", "training-string", "style-list",
        "version-string", "shape-number", "shape-string", "dtype-number", "offsets-string", "tensor-not-object"])
def test_a_model_header_of_wrong_json_types_is_one_error(runner, tmp_path, change):
    """Each JSON value of the wrong type: exit 1 (as any unreadable model), one line naming the file, no output."""
    model = rewrite_header(tiny_model(tmp_path / "m.safetensors"), change)
    photo = make_image(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["apply", str(model), str(photo), "-o", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert line.startswith(f"Error: model {model} ") or line.startswith(f"Error: {model} is not an nstcli style model")
    assert "unexpected" not in line
    assert not out.exists()
