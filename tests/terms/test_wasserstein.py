"""The Wasserstein-2 style term and the nine-point TV, against hand computations in plain torch."""

from __future__ import annotations

import pytest
import torch

from nstcli.network.features import VGGFeatures
from nstcli.terms.base import Term
from nstcli.terms.tv_stencil import tv_ninepoint
from nstcli.terms.wasserstein import (GaussianTarget, WassersteinStyle, blend_moments, covariance, moments,
                                      w2_layer_loss)
from nstcli.network.weights import random_state_dict

D = torch.float64


def cloud(channels, h, w, seed, shift=0.0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, channels, h, w, generator=generator, dtype=D) * scale + shift


def hand_gaussian(features, ridge=1e-4):
    """Mean and (ridged) covariance from the centred point cloud, written out."""
    x = features[0].reshape(features.shape[1], -1)
    mean = x.mean(1)
    centred = x - mean[:, None]
    return mean, centred @ centred.t() / x.shape[1] + ridge * torch.eye(x.shape[0], dtype=x.dtype)


def hand_sqrtm(matrix):
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.t()


def hand_w2(features, style, ridge=1e-4):
    """(|mu - mu_t|^2 + tr(S + S_t - 2 (S_t^1/2 S S_t^1/2)^1/2)) / C."""
    mu, cov = hand_gaussian(features, ridge)
    mu_t, cov_t = hand_gaussian(style, ridge)
    root_t = hand_sqrtm(cov_t)
    cross = hand_sqrtm(root_t @ cov @ root_t)
    return (((mu - mu_t) ** 2).sum() + torch.trace(cov + cov_t - 2 * cross)) / features.shape[1]


def target_of(style, ridge=1e-4):
    return GaussianTarget.from_moments(*moments(style), ridge)


def test_layer_loss_matches_hand_computation():
    """It computes the per-layer W2 distance exactly as the formula written out in float64."""
    features, style = cloud(6, 5, 4, seed=1), cloud(6, 3, 7, seed=2, shift=0.5, scale=2.0)
    value = w2_layer_loss(features, target_of(style))
    expected = hand_w2(features, style)
    assert float(expected) > 0.1
    assert torch.allclose(value, expected, rtol=1e-10, atol=0)


def test_layer_loss_float32_channels_last_matches_float64():
    """It gives the float64 value to 1e-5 from float32 features in channels_last layout."""
    features, style = cloud(16, 8, 8, seed=3), cloud(16, 8, 8, seed=4, scale=3.0)
    fast = features.float().contiguous(memory_format=torch.channels_last)
    value = w2_layer_loss(fast, target_of(style))
    assert value.dtype == torch.float32
    assert abs(float(value) - float(hand_w2(features, style))) <= 1e-5 * float(hand_w2(features, style))


def test_float32_gradient_with_fewer_positions_than_channels():
    """It matches the float64 gradient to 1e-5 from float32 features where the sample covariance is singular."""
    generator = torch.Generator().manual_seed(25)
    features = torch.randn(1, 64, 4, 8, generator=generator, dtype=D).relu()  # 32 positions, 64 channels
    target = target_of(torch.randn(1, 64, 4, 8, generator=generator, dtype=D).relu() * 1.1)

    def gradient(x):
        leaf = x.clone().requires_grad_(True)
        return torch.autograd.grad(w2_layer_loss(leaf, target), leaf)[0].double()

    reference = gradient(features)
    assert float((gradient(features.float()) - reference).norm() / reference.norm()) < 1e-5


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_layer_loss_gradcheck(layout):
    """Its hand-written backward agrees with finite differences, in both memory layouts."""
    features = cloud(4, 3, 3, seed=5).contiguous(memory_format=layout).requires_grad_(True)
    target = target_of(cloud(4, 3, 2, seed=6, shift=1.0))
    assert torch.autograd.gradcheck(lambda f: w2_layer_loss(f, target), (features,))


def test_layer_loss_gradcheck_with_position_weights():
    """Its backward is also right when positions carry weights."""
    features = cloud(3, 3, 4, seed=7).requires_grad_(True)
    weights = torch.rand(3, 4, generator=torch.Generator().manual_seed(8), dtype=D)
    target = target_of(cloud(3, 4, 4, seed=9))
    assert torch.autograd.gradcheck(lambda f: w2_layer_loss(f, target, position_weights=weights), (features,))


def test_gradient_layout_follows_features():
    """It returns the gradient in the features' memory layout, equal in both layouts."""
    base = cloud(8, 4, 5, seed=10).float()
    target = target_of(cloud(8, 4, 5, seed=11))
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        leaf = base.clone(memory_format=layout).requires_grad_(True)
        w2_layer_loss(leaf, target).backward()
        assert leaf.grad.is_contiguous(memory_format=layout)
        grads.append(leaf.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


def test_zero_when_features_match_the_target():
    """It is zero (to rounding) when the image's statistics are the style's, and positive otherwise."""
    style = cloud(10, 6, 6, seed=12, shift=0.3, scale=1.5)
    target = target_of(style)
    trace = float(hand_gaussian(style)[1].trace())
    assert abs(float(w2_layer_loss(style, target))) < 1e-10 * trace
    # The same statistics from positions in another order: the loss only sees the distribution.
    shuffled = style.flatten(2)[..., torch.randperm(36, generator=torch.Generator().manual_seed(0))].view(1, 10, 6, 6)
    assert abs(float(w2_layer_loss(shuffled, target))) < 1e-10 * trace
    assert float(w2_layer_loss(cloud(10, 6, 6, seed=13), target)) > 0.1


def test_position_weights_select_positions():
    """Weights of one and zero give the statistics of the selected positions alone; any scale of weights is the same."""
    features = cloud(5, 4, 6, seed=14)
    mask = torch.zeros(4, 6, dtype=D)
    mask[1:3, 2:5] = 1.0
    mean, second = moments(features, mask)
    selected = features[..., 1:3, 2:5]
    mean_sel, second_sel = moments(selected.contiguous())
    assert torch.allclose(mean, mean_sel) and torch.allclose(second, second_sel)
    mean_scaled, second_scaled = moments(features, mask * 7.0)
    assert torch.allclose(mean_scaled, mean) and torch.allclose(second_scaled, second)
    target = target_of(cloud(5, 4, 4, seed=15))
    assert torch.allclose(w2_layer_loss(features, target, position_weights=mask),
                          w2_layer_loss(selected.contiguous(), target))
    with pytest.raises(ValueError, match="positive sum"):
        moments(features, torch.zeros(4, 6, dtype=D))


def test_blend_mixes_raw_moments_not_covariances():
    """It blends two styles into the statistics of their pooled positions, which mixing covariances would not give."""
    a, b = cloud(4, 5, 5, seed=16, shift=-2.0), cloud(4, 5, 5, seed=17, shift=3.0)
    mean, second = blend_moments([moments(a), moments(b)], [1.0, 1.0])
    pooled = torch.cat([a, b], dim=3)  # the union of the two point clouds
    mean_pooled, second_pooled = moments(pooled)
    assert torch.allclose(mean, mean_pooled) and torch.allclose(second, second_pooled)
    mixed_covariances = 0.5 * (hand_gaussian(a)[1] + hand_gaussian(b)[1])
    assert torch.allclose(covariance(mean, second), hand_gaussian(pooled)[1])
    assert not torch.allclose(covariance(mean, second), mixed_covariances, atol=0.5)


def test_blend_weights_normalised_and_one_zero_is_single_style():
    """It normalises blend weights, and a 1, 0 blend is the first style alone."""
    layer_weights = {"a": 1.0}
    s1, s2 = {"a": cloud(4, 4, 4, seed=18)}, {"a": cloud(4, 4, 4, seed=19, shift=1.0)}
    single = WassersteinStyle.from_features([s1], [1.0], layer_weights, weight=1.0)
    one_zero = WassersteinStyle.from_features([s1, s2], [1.0, 0.0], layer_weights, weight=1.0)
    assert torch.equal(single.targets["a"].mean, one_zero.targets["a"].mean)
    assert torch.equal(single.targets["a"].sqrt_cov, one_zero.targets["a"].sqrt_cov)
    quarter = WassersteinStyle.from_features([s1, s2], [1.0, 3.0], layer_weights, weight=1.0)
    scaled = WassersteinStyle.from_features([s1, s2], [2.5, 7.5], layer_weights, weight=1.0)
    assert torch.allclose(quarter.targets["a"].sqrt_cov, scaled.targets["a"].sqrt_cov)
    expected_mean = 0.25 * moments(s1["a"])[0] + 0.75 * moments(s2["a"])[0]
    assert torch.allclose(quarter.targets["a"].mean, expected_mean)
    with pytest.raises(ValueError, match="styles but 1 blend weights"):
        WassersteinStyle.from_features([s1, s2], [1.0], layer_weights, weight=1.0)


def test_term_weights_layers_and_names_itself():
    """It is a Term named style that reads its layers and sums weight * layer weight * E_l."""
    styles = {"x": cloud(3, 4, 4, seed=20), "y": cloud(5, 2, 2, seed=21)}
    current = {"x": cloud(3, 4, 4, seed=22), "y": cloud(5, 2, 2, seed=23)}
    term = WassersteinStyle.from_features([styles], [1.0], {"x": 0.8, "y": 0.2}, weight=3.0)
    assert isinstance(term, Term) and term.name == "style" and term.layers == ("x", "y")
    value = term(current, torch.zeros(1, 3, 8, 8, dtype=D))
    expected = 3.0 * (0.8 * hand_w2(current["x"], styles["x"]) + 0.2 * hand_w2(current["y"], styles["y"]))
    assert torch.allclose(value, expected, rtol=1e-10)
    assert value.dim() == 0


def test_term_position_weights_compare_part_of_the_image():
    """It compares only the weighted positions with the style when given per-layer position weights."""
    styles = {"x": cloud(3, 4, 4, seed=26)}
    current = {"x": cloud(3, 4, 6, seed=27)}
    mask = torch.zeros(4, 6, dtype=D)
    mask[:, :3] = 1.0
    term = WassersteinStyle.from_features([styles], [1.0], {"x": 1.0}, weight=2.0)
    masked = WassersteinStyle(term.targets, {"x": 1.0}, weight=2.0, position_weights={"x": mask})
    left = {"x": current["x"][..., :3].contiguous()}
    image = torch.zeros(1, 3, 8, 8, dtype=D)
    assert torch.allclose(masked(current, image), term(left, image), rtol=1e-10)
    assert not torch.allclose(masked(current, image), term(current, image), rtol=1e-3)


def test_loss_goes_down_when_optimising_an_image():
    """It drives an image towards the style: the term falls in 15 Adam steps through an untrained VGG19."""
    torch.manual_seed(0)
    layers = ("relu1_1", "relu2_1", "relu3_1")
    network = VGGFeatures(random_state_dict(0), layers).to(memory_format=torch.channels_last)
    style = torch.rand(1, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        term = WassersteinStyle.from_features([network(style)], [1.0], {k: 1.0 for k in layers}, weight=1.0)
    image = torch.full((1, 3, 32, 32), 0.5).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=0.02, betas=(0.9, 0.99))
    values = []
    for _ in range(15):
        optimizer.zero_grad()
        value = term(network(image), image)
        value.backward()
        optimizer.step()
        values.append(float(value.detach()))
    assert values[-1] < 0.5 * values[0], values


# --- nine-point TV ---------------------------------------------------------------------------------


def hand_tv_ninepoint(image):
    """The stencil written out pixel by pixel on the edge-replicated image."""
    _, channels, h, w = image.shape

    def p(c, i, j):  # the padded image: row i, column j in 0..h+1, 0..w+1
        return float(image[0, c, min(max(i - 1, 0), h - 1), min(max(j - 1, 0), w - 1)])

    horizontal = vertical = diagonal = anti = 0.0
    for c in range(channels):
        for i in range(1, h + 1):
            for j in range(1, w + 1):
                horizontal += (p(c, i, j + 1) - p(c, i, j)) ** 2
                vertical += (p(c, i + 1, j) - p(c, i, j)) ** 2
        for i in range(h + 1):
            for j in range(w + 1):
                diagonal += (p(c, i + 1, j + 1) - p(c, i, j)) ** 2
                anti += (p(c, i + 1, j) - p(c, i, j + 1)) ** 2
    inner, outer = channels * h * w, channels * (h + 1) * (w + 1)
    return 2 * (horizontal / inner / 3 + vertical / inner / 3 + diagonal / outer / 12 + anti / outer / 12)


def test_tv_ninepoint_matches_hand_computation():
    """It computes the nine-point stencil on the edge-replicated image exactly."""
    image = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(24), dtype=D)
    assert abs(float(tv_ninepoint(image)) - hand_tv_ninepoint(image)) < 1e-12


def test_tv_ninepoint_of_a_ramp_and_a_constant():
    """It is zero on a constant image, and on a horizontal ramp counts no difference across the border."""
    assert float(tv_ninepoint(torch.full((1, 3, 4, 4), 0.7, dtype=D))) == 0.0
    ramp = torch.arange(3, dtype=D).view(1, 1, 1, 3).expand(1, 1, 2, 3).contiguous()  # columns 0, 1, 2
    # Horizontal: 2 unit steps per row out of 3 pixels (the right border repeats): mean 4/6.
    # Vertical: none. Diagonals on the 4 x 5 padded image (columns 0 0 1 2 2): per row pair,
    # 2 of 4 pairs differ by one in each direction: mean 6/12 each.
    expected = 2 * ((4 / 6) / 3 + 0 + (6 / 12) / 12 + (6 / 12) / 12)
    assert abs(float(tv_ninepoint(ramp)) - expected) < 1e-12
    assert abs(hand_tv_ninepoint(ramp) - expected) < 1e-12


def test_tv_ninepoint_gradcheck():
    """It is differentiable (autograd through the padding)."""
    image = torch.rand(1, 2, 3, 3, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(tv_ninepoint, (image,))
