"""The recipes in configs/ reproduce their sources' objectives, checked against the published formulas.

Each test runs one fixed image through nstcli's terms (built from the recipe file) and through the
source's formula written out in plain torch on a hand-built VGG19 (same weights), in float64, and
compares term by term.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from nstcli.cli.main import nst
from nstcli.config.fields import load_config
from nstcli.network.conventions import CAFFE, TORCHVISION
from nstcli.network.features import VGGFeatures
from nstcli.network.load import layers_needed
from nstcli.terms.settings import LossSettings
from nstcli.stylize.sizes import scale_sizes, steps_per_scale
from nstcli.network.weights import random_state_dict

from helpers import make_image, standard_terms

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SIZE = 64
TOLERANCE = 1e-5

# torchvision's vgg19().features: channels of each convolution, "M" for a pooling layer.
VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def hand_vgg(state, image, pooling="max", first_padding="zeros", convention=TORCHVISION):
    """{conv1_1, relu1_1, ...: activation} from the state dict, layer by layer, in plain torch, on the
    pixels prepared as `convention` says (written out: reorder, scale, subtract, divide)."""
    mean = torch.tensor(convention.mean, dtype=image.dtype).view(1, 3, 1, 1)
    std = torch.tensor(convention.std, dtype=image.dtype).view(1, 3, 1, 1)
    x = (image[:, list(convention.order)] * convention.pixel_range - mean) / std
    out, index, block, conv = {}, 0, 1, 1
    for item in VGG19:
        if item == "M":
            x = F.max_pool2d(x, 2) if pooling == "max" else F.avg_pool2d(x, 2)
            index, block, conv = index + 1, block + 1, 1
            continue
        weight = state[f"{index}.weight"].to(image.dtype)
        bias = state[f"{index}.bias"].to(image.dtype)
        if index == 0 and first_padding == "replicate":
            x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias)
        else:
            x = F.conv2d(x, weight, bias, padding=1)
        out[f"conv{block}_{conv}"] = x
        x = F.relu(x)
        out[f"relu{block}_{conv}"] = x
        index, conv = index + 2, conv + 1
    return out


def images():
    """Fixed content, style and current images (64 x 64, float64), all different."""
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, SIZE, SIZE, generator=generator, dtype=torch.float64)
    style = torch.rand(1, 3, SIZE, SIZE, generator=generator, dtype=torch.float64) ** 2
    current = (0.5 * content + 0.5 * torch.rand(1, 3, SIZE, SIZE, generator=generator, dtype=torch.float64))
    return content, style, current


def nstcli_terms(config, content, style, current, convention=TORCHVISION):
    """{term name: value} of nstcli's terms for `config`, on its own network, in float64."""
    network = VGGFeatures(random_state_dict(0), layers_needed(config), pooling=config.pooling,
                          padding=config.padding, convention=convention).double()
    layout = torch.channels_last
    content, style, current = (t.contiguous(memory_format=layout) for t in (content, style, current))
    terms = standard_terms(config.pick(LossSettings), network, content, [style])
    features = network(current)
    values = {}
    for term in terms:
        values[term.name] = values.get(term.name, 0.0) + float(term(features, current))
    return values


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * abs(b)


def test_pytorch_tutorial_recipe_is_the_tutorials_objective():
    """It gives the tutorial's content (mse at conv_4) and style (1e6 * sum of Gram mse, Grams / abcd) exactly."""
    config = load_config(CONFIGS / "pytorch-tutorial.yaml")
    content, style, current = images()
    ours = nstcli_terms(config, content, style, current)

    state = random_state_dict(0)
    x, c, s = (hand_vgg(state, t) for t in (current, content, style))

    def gram(f):  # the tutorial's gram_matrix: F F^T / (a * b * c * d)
        a, b, h, w = f.shape
        flat = f.view(a * b, h * w)
        return flat @ flat.t() / (a * b * h * w)

    # The tutorial's names count convolutions: conv_1 .. conv_5 and conv_4.
    conv_n = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    content_score = 1 * F.mse_loss(x[conv_n[3]], c[conv_n[3]])
    style_score = 1e6 * sum(F.mse_loss(gram(x[k]), gram(s[k])) for k in conv_n)
    assert set(ours) == {"content", "style"}
    assert close(ours["content"], float(content_score)), (ours["content"], float(content_score))
    assert close(ours["style"], float(style_score)), (ours["style"], float(style_score))
    assert (config.optimizer, config.steps, config.start_size, config.init) == ("lbfgs", 300, None, "content")


def test_gatys2016_recipe_is_the_papers_objective():
    """It gives alpha/beta * 1/2 sum (F - P)^2 + sum 1/5 E_l at the paper's size, scaled by positions elsewhere."""
    config = load_config(CONFIGS / "gatys2016.yaml")
    alpha_over_beta = 1e-3
    # The file fixes the balance for 512 x 512 px: relu4_2 has 512 channels and 64 x 64 positions.
    assert config.size == 512 and config.content_weight == pytest.approx(alpha_over_beta * 512 * 64 * 64)
    positions = (SIZE // 8) ** 2
    config = config.replace(content_weight=config.content_weight * positions / (64 * 64))
    content, style, current = images()
    ours = nstcli_terms(config, content, style, current)

    state = random_state_dict(0)
    x, c, s = (hand_vgg(state, t, pooling="avg") for t in (current, content, style))
    content_loss = 0.5 * ((x["relu4_2"] - c["relu4_2"]) ** 2).sum()
    style_loss = 0.0
    for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"):
        n, m = x[name].shape[1], x[name].shape[2] * x[name].shape[3]
        fx, fs = x[name].reshape(n, m), s[name].reshape(n, m)
        e = ((fx @ fx.t() - fs @ fs.t()) ** 2).sum() / (4 * n**2 * m**2)
        style_loss = style_loss + e / 5
    assert close(ours["content"], float(alpha_over_beta * content_loss))
    assert close(ours["style"], float(style_loss))
    assert (config.pooling, config.optimizer, config.init) == ("avg", "lbfgs", "noise")


def test_neural_style_recipe_is_jcjohnsons_objective():
    """It gives neural-style's 5 * mse content, 100 * mse of Grams / (N M) per layer and its TV, on the
    Caffe convention, at the size the file fixes its TV for (scaled to the test's size)."""
    config = load_config(CONFIGS / "neural-style.yaml")
    assert (config.weights, config.loss_normalization, config.size) == ("original", "none", 512)
    assert config.tv_weight == pytest.approx(1e-3 * 0.5 * 255**2 * 3 * 383 * 511)
    # At the test's 64 x 64 px, neural-style's TV sum covers 3 * 63 * 63 values instead.
    config = config.replace(tv_weight=1e-3 * 0.5 * 255**2 * 3 * (SIZE - 1) ** 2)
    content, style, current = images()
    ours = nstcli_terms(config, content, style, current, convention=CAFFE)

    state = random_state_dict(0)
    x, c, s = (hand_vgg(state, t, convention=CAFFE) for t in (current, content, style))

    def gram(f):  # neural-style's GramMatrix, divided by input:nElement()
        _, n, h, w = f.shape
        flat = f.reshape(n, h * w)
        return flat @ flat.t() / (n * h * w)

    content_loss = 5 * F.mse_loss(x["relu4_2"], c["relu4_2"])
    style_loss = sum(100 * F.mse_loss(gram(x[k]), gram(s[k]))
                     for k in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    # TVLoss's gradient is that of 1/2 * sum(x_diff^2 + y_diff^2) on the 0..255 preprocessed image.
    pixels = current * 255
    x_diff = pixels[..., :-1, :-1] - pixels[..., :-1, 1:]
    y_diff = pixels[..., :-1, :-1] - pixels[..., 1:, :-1]
    tv = 1e-3 * 0.5 * (x_diff**2 + y_diff**2).sum()
    assert set(ours) == {"content", "style", "tv"}
    assert close(ours["content"], float(content_loss)), (ours["content"], float(content_loss))
    assert close(ours["style"], float(style_loss)), (ours["style"], float(style_loss))
    assert close(ours["tv"], float(tv)), (ours["tv"], float(tv))
    assert (config.optimizer, config.steps, config.init, config.start_size) == ("lbfgs", 1000, "noise", None)


def _sqrtm(matrix):
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.t()


def _w2(f, t, eps=1e-4):
    """crowsonkb's StyleLossW2 with exact square roots: mean_c (mu - mu_t)^2 + mean diag(...)."""
    def stats(x):
        c = x.shape[1]
        flat = x[0].reshape(c, -1)
        mean = flat.mean(1)
        cov = flat @ flat.t() / flat.shape[1] - torch.outer(mean, mean) + eps * torch.eye(c, dtype=x.dtype)
        return mean, cov

    mean, cov = stats(f)
    mean_t, cov_t = stats(t)
    root_t = _sqrtm(cov_t)
    return ((mean - mean_t) ** 2).mean() + torch.diagonal(cov + cov_t - 2 * _sqrtm(root_t @ cov @ root_t)).mean()


def _tv_ninepoint(image):
    """crowsonkb's TVLoss, written from its stencil: neighbours on the edge-replicated image."""
    p = F.pad(image, (1, 1, 1, 1), mode="replicate")
    h, w = image.shape[-2:]
    right = (p[..., 1:h + 1, 2:w + 2] - p[..., 1:h + 1, 1:w + 1]).pow(2).mean()
    down = (p[..., 2:h + 2, 1:w + 1] - p[..., 1:h + 1, 1:w + 1]).pow(2).mean()
    diagonal = (p[..., 1:, 1:] - p[..., :-1, :-1]).pow(2).mean()
    anti = (p[..., 1:, :-1] - p[..., :-1, 1:]).pow(2).mean()
    return 2 * (right / 3 + down / 3 + diagonal / 12 + anti / 12)


def test_wasserstein_recipe_is_crowsonkbs_objective():
    """It gives 0.015 mse at relu4_2, sum of (256:64:16:4:1)/341 W2 terms and 2 * TV9, with replicate padding."""
    config = load_config(CONFIGS / "wasserstein.yaml")
    content, style, current = images()
    ours = nstcli_terms(config, content, style, current)

    state = random_state_dict(0)
    x, c, s = (hand_vgg(state, t, first_padding="replicate") for t in (current, content, style))
    weights = [w / 341 for w in (256, 64, 16, 4, 1)]
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_loss = 0.015 * F.mse_loss(x["relu4_2"], c["relu4_2"])
    style_loss = sum(w * _w2(x[k], s[k]) for w, k in zip(weights, layers))
    tv = 2 * _tv_ninepoint(current)
    assert set(ours) == {"content", "style", "tv"}
    assert close(ours["content"], float(content_loss)), (ours["content"], float(content_loss))
    assert close(ours["style"], float(style_loss)), (ours["style"], float(style_loss))
    assert close(ours["tv"], float(tv)), (ours["tv"], float(tv))


def test_wasserstein_recipe_schedule():
    """It runs crowsonkb's schedule: sqrt(2) scales from the output down to 128 px, 1000 then 500 steps, Adam."""
    config = load_config(CONFIGS / "wasserstein.yaml")
    assert scale_sizes(config) == [128, 181, 256, 362, 512]
    assert scale_sizes(config.replace(size=500)) == [177, 250, 354, 500]
    assert steps_per_scale(config, scale_sizes(config)) == [1000, 500, 500, 500, 500]
    assert (config.optimizer, config.lr, config.adam_betas, config.average) == ("adam", 0.02, (0.9, 0.99), 0.99)
    assert (config.padding, config.tv_stencil, config.init) == ("replicate", "ninepoint", "content")


def test_wasserstein_recipe_runs_end_to_end(tmp_path, runner):
    """It stylises through the CLI with --config configs/wasserstein.yaml at a tiny size."""
    content = make_image(tmp_path / "content.png", size=(48, 32), seed=1)
    style = make_image(tmp_path / "style.png", size=(40, 40), seed=2)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), "--config",
                                 str(CONFIGS / "wasserstein.yaml"), "--weights", "random", "--size", "48",
                                 "--start-size", "32", "--steps", "2", "--first-steps", "3", "--quiet",
                                 "--checkpoint-every", "0", "--json"])
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.stdout)
    assert summary["steps"] == 5 and summary["scales"] == [[23, 34], [32, 48]]
    assert set(summary["loss"]) >= {"content", "style", "tv"}
    assert Image.open(out).size == (48, 32)


def test_neighbours_recipe_is_nnsts_setup_on_vgg19():
    """configs/neighbours.yaml: NNST's objective and optimiser, with VGG19's counterpart of its VGG16 layers."""
    config = load_config(CONFIGS / "neighbours.yaml")
    assert config.style_loss == "neighbours" and config.content_weight == 0.0
    assert not any(layer.startswith("relu5") for layer in config.style_layers)  # block 5 left out, as NNST
    assert config.neighbour_content_mix == 0.75  # NNST's alpha
    assert config.style_rotations == (0, 90, 180, 270)
    assert (config.optimizer, config.lr, config.pyramid_levels) == ("adam", 0.002, 8)


def test_neighbours_recipe_runs_end_to_end(tmp_path, runner):
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(CONFIGS.parent / "examples" / "content.jpg"),
                                 str(CONFIGS.parent / "examples" / "style.jpg"),
                                 "-o", str(out), "--config", "neighbours", "--weights", "random", "--size", "48",
                                 "--steps", "2", "--quiet", "--checkpoint-every", "0"])
    assert result.exit_code == 0, result.output
    assert out.exists()
