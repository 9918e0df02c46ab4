"""The extractor and the loss formulas."""

import pytest
import torch

from nstcli.errors import ConfigError
from nstcli.network.features import VGGFeatures
from nstcli.terms import content as content_terms
from nstcli.terms import gram as gram_terms
from nstcli.terms import tv as tv_terms
from nstcli.network.weights import random_state_dict


@pytest.fixture(scope="module")
def state():
    return random_state_dict(0)


def test_unknown_layer_lists_valid_names(state):
    """It rejects an unknown layer and lists the valid names."""
    with pytest.raises(ConfigError, match=r"unknown VGG19 layer 'relu4_5'; did you mean 'relu4_4'\? valid layers: conv1_1"):
        VGGFeatures(state, ["relu4_5"])


def test_truncated_after_deepest_layer(state):
    """It builds only the layers up to the deepest one requested."""
    assert len(VGGFeatures(state, ["relu1_1"]).body) == 2
    assert len(VGGFeatures(state, ["conv4_2", "relu2_1"]).body) == 22
    assert len(VGGFeatures(state, ["pool5"]).body) == 37


def test_outputs_by_name_and_shapes(state):
    """It returns each requested layer by name at the right resolution."""
    out = VGGFeatures(state, ["conv1_1", "relu1_1", "pool2", "relu5_1"])(torch.rand(1, 3, 64, 48))
    assert out["conv1_1"].shape == (1, 64, 64, 48)
    assert out["pool2"].shape == (1, 128, 16, 12)
    assert out["relu5_1"].shape == (1, 512, 4, 3)
    # conv output kept intact although a ReLU follows it
    assert (out["conv1_1"] < 0).any() and not (out["relu1_1"] < 0).any()


def test_frozen_and_eval(state):
    """It has no trainable parameters and stays in eval mode."""
    net = VGGFeatures(state, ["relu3_1"])
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_normalisation_inside(state):
    """It applies ImageNet normalisation itself: the ImageNet mean colour maps to zero input."""
    net = VGGFeatures(state, ["conv1_1"])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    out = net(mean)["conv1_1"]
    assert torch.allclose(out, net.body[0].bias.view(1, -1, 1, 1).expand_as(out), atol=1e-6)


def test_avg_pooling(state):
    """It swaps max pooling for average pooling on request."""
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    before = VGGFeatures(state, ["relu1_2"])(image)["relu1_2"]
    pooled = VGGFeatures(state, ["pool1"], pooling="avg")(image)["pool1"]
    assert torch.allclose(pooled, torch.nn.functional.avg_pool2d(before, 2), atol=1e-6)
    assert not torch.allclose(pooled, torch.nn.functional.max_pool2d(before, 2), atol=1e-3)


def test_style_loss_is_gatys_formula():
    """It equals 1/(4 N^2 M^2) sum (FF^T - SS^T)^2 exactly."""
    torch.manual_seed(0)
    f, s = torch.rand(1, 6, 5, 7), torch.rand(1, 6, 5, 7)
    n, m = 6, 35
    ff, ss = f.reshape(n, m), s.reshape(n, m)
    expected = ((ff @ ff.T - ss @ ss.T) ** 2).sum() / (4 * n**2 * m**2)
    got = gram_terms.style_loss(gram_terms.gram_matrix(f), gram_terms.gram_matrix(s))
    assert torch.allclose(got, expected)


def test_content_loss_is_normalised_half_sum():
    """It equals 1/(2NM) sum (F - P)^2."""
    f, p = torch.rand(1, 4, 3, 5), torch.rand(1, 4, 3, 5)
    assert torch.allclose(content_terms.content_loss(f, p), ((f - p) ** 2).sum() / (2 * 4 * 15))


def test_losses_do_not_depend_on_size():
    """It gives the same content and style loss for the same statistics at two sizes."""
    torch.manual_seed(0)
    small_f, small_p = torch.rand(1, 8, 4, 4), torch.rand(1, 8, 4, 4)
    # tile 4x: same per-position statistics, 16x the positions
    big_f, big_p = small_f.repeat(1, 1, 4, 4), small_p.repeat(1, 1, 4, 4)
    assert torch.allclose(content_terms.content_loss(small_f, small_p), content_terms.content_loss(big_f, big_p))
    small = gram_terms.style_loss(gram_terms.gram_matrix(small_f), gram_terms.gram_matrix(small_p))
    big = gram_terms.style_loss(gram_terms.gram_matrix(big_f), gram_terms.gram_matrix(big_p))
    assert torch.allclose(small, big)


def test_tv_loss_zero_for_flat_image():
    """It is zero for a flat image and positive for a noisy one."""
    assert tv_terms.tv_loss(torch.full((1, 3, 8, 8), 0.3)) == 0
    assert tv_terms.tv_loss(torch.rand(1, 3, 8, 8)) > 0


def test_lbfgs_history_bounded_by_memory():
    """It keeps 100 L-BFGS pairs for small images and fewer, never under 5, for huge ones."""
    from nstcli.optim.optimizers import lbfgs_history

    assert lbfgs_history(384 * 256 * 3) == 100
    assert lbfgs_history(2048 * 1365 * 3) == 16
    assert lbfgs_history(10**10) == 5
