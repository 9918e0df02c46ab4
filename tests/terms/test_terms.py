"""Loss terms as parts: values by hand, gradients by gradcheck, and a loop that knows no term by name."""

import json

import pytest
import torch

from nstcli.reports import Callback
from nstcli import api
from nstcli.optim import engine
from nstcli.cli.main import nst
from nstcli.config.fields import Config, load_config
from nstcli.network.features import VGGFeatures
from nstcli.image.io import prepare
from nstcli.terms.settings import LossSettings
from nstcli.optim.optimizers import IterateAverage, OptimizerSettings, resize_state
from nstcli.stylize.sizes import scale_sizes, steps_per_scale
from nstcli.terms.base import Term, evaluate, layers_read
from nstcli.terms.content import Content
from nstcli.terms.gram import GramStyle, gram_matrix
from nstcli.terms.tv import TotalVariation
from nstcli.network.weights import random_state_dict

from helpers import FAST, standard_terms

BASE = dict(weights="random", checkpoint_every=0, start_size=None)


def features(seed, shape=(1, 3, 4, 5)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_content_term_by_hand():
    """It gives weight * 1/(2NM) sum (F - P)^2 summed over its layers."""
    f, p, g, q = features(0), features(1), features(2, (1, 2, 3, 3)), features(3, (1, 2, 3, 3))
    term = Content({"a": p, "b": q}, weight=3.0)
    expected = 3.0 * (((f - p) ** 2).sum() / (2 * 3 * 20) + ((g - q) ** 2).sum() / (2 * 2 * 9))
    assert term.layers == ("a", "b")
    assert torch.allclose(term({"a": f, "b": g}, f), expected)


def test_gram_term_by_hand():
    """It gives weight * sum_l w_l 1/(4 N^2 M^2) sum (F F^T - A M)^2, Gatys's E_l."""
    f, s = features(0), features(1)
    flat_f, flat_s = f.reshape(3, 20), s.reshape(3, 20)
    by_hand = ((flat_f @ flat_f.T - flat_s @ flat_s.T) ** 2).sum() / (4 * 9 * 400)
    term = GramStyle.from_features([{"a": s}], [1.0], {"a": 0.5}, weight=10.0)
    assert torch.allclose(term({"a": f}, f), 10.0 * 0.5 * by_hand)


def test_gram_blend_mixes_grams():
    """It blends several styles' Gram matrices with the normalised weights; a zero weight drops a style."""
    a, b = features(1), features(2)
    term = GramStyle.from_features([{"x": a}, {"x": b}], [3.0, 1.0], {"x": 1.0}, 1.0)
    assert torch.allclose(term.targets["x"], 0.75 * gram_matrix(a) + 0.25 * gram_matrix(b))
    only_a = GramStyle.from_features([{"x": a}, {}], [1.0, 0.0], {"x": 1.0}, 1.0)
    assert torch.allclose(only_a.targets["x"], gram_matrix(a))


@pytest.mark.parametrize("make", [
    lambda t: Content({"a": t}, 2.0),
    lambda t: GramStyle({"a": gram_matrix(t)}, {"a": 1.5}, 2.0),
])
def test_feature_term_gradients(make):
    """It has the gradient autograd's gradcheck finds numerically, in float64."""
    term = make(features(5))
    x = features(6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: term({"a": f}, f), (x,))


@pytest.mark.parametrize("stencil", ["forward", "ninepoint"])
def test_tv_gradients_and_flat_image(stencil):
    """It is zero on a flat image and has the right gradient."""
    term = TotalVariation(2.0, stencil)
    assert term({}, torch.full((1, 3, 6, 6), 0.4, dtype=torch.float64)) == 0
    x = features(7, (1, 3, 5, 6)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda image: term({}, image), (x,))


def test_evaluate_sums_and_reports_by_name():
    """It sums every term, reports each by name, and adds up terms sharing a name."""

    class Constant(Term):
        def __init__(self, name, value):
            self.name, self.value = name, value

        def __call__(self, features, image):
            return image.new_tensor(self.value)

    image = torch.zeros(1, 3, 2, 2)
    total, parts = evaluate([Constant("style", 1.0), Constant("style", 2.0), Constant("extra", 4.0)], {}, image)
    assert float(total) == 7.0 and {k: float(v) for k, v in parts.items()} == {"style": 3.0, "extra": 4.0}
    assert layers_read([Content({"b": image, "a": image}, 1.0), GramStyle({"a": image[0, :2, :2]}, {"a": 1}, 1)]) \
        == ("b", "a")


class Brightness(Term):
    """A term the engine has never heard of: pull the mean pixel towards 1 (weighted to matter beside
    the normalised content and style terms, which are relative errors of order one)."""

    name = "brightness"

    def __call__(self, features, image):
        return 100.0 * (1.0 - image.mean()) ** 2


def test_a_new_term_reaches_every_report(content, style):
    """It optimises, logs and summarises a term added from outside without any change to the loop."""
    config = Config(size=32, steps=4, **BASE)
    result = api.stylize(content, style, config=config, extra_terms=lambda shape, device: [Brightness()])
    assert all("brightness" in row for row in result.log)
    assert result.log[-1]["brightness"] < result.log[0]["brightness"]
    assert set(result.summary()["loss"]) == {"loss", "content", "style", "brightness"}


def test_json_shows_the_terms_the_run_has(runner, content, style, tmp_path):
    """It lists tv in --json only when the run has a tv term."""
    args = ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST, "--json"]
    plain = json.loads(runner.invoke(nst, args).stdout)
    smooth = json.loads(runner.invoke(nst, args + ["--tv-weight", "1"]).stdout)
    assert set(plain["loss"]) == {"loss", "content", "style"}
    assert set(smooth["loss"]) == {"loss", "content", "style", "tv"}
    assert smooth["loss"]["loss"] == pytest.approx(sum(v for k, v in smooth["loss"].items() if k != "loss"))


def test_iterate_average_is_bias_corrected():
    """It averages with weights decay^k, divided by 1 - decay^t, starting from the first image."""
    values = [torch.full((1, 1), float(v)) for v in (2.0, 4.0, 8.0)]
    average = IterateAverage(values[0], 0.5)
    for v in values[1:]:
        average.update(v)
    # t = 3 updates: weights 0.5 * (0.25, 0.5, 1) over 1 - 0.125
    expected = (0.5 * 0.25 * 2 + 0.5 * 0.5 * 4 + 0.5 * 8) / (1 - 0.125)
    assert float(average.value) == pytest.approx(expected)
    assert float(IterateAverage(values[1], 0.99).value) == pytest.approx(4.0)


def test_averaging_shows_the_average(content, style):
    """It reports, checkpoints and returns the running average of the iterates, not the last iterate."""
    seen = []

    class Keep(Callback):
        def on_step(self, report):
            seen.append(report.image.clone())

    network = api.load_network(Config(**BASE))
    start = prepare(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.device("cpu"))
    style_image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    terms = standard_terms(Config(**BASE).pick(LossSettings), network, start, [style_image])
    plain = engine.optimize(network, start, terms, OptimizerSettings("adam", 0.05), steps=5)
    averaged = engine.optimize(network, start, terms, OptimizerSettings("adam", 0.05), steps=5, average=0.9,
                               callbacks=[Keep()])
    assert torch.equal(averaged.image, seen[-1])
    # the average lags behind: closer to the start than the plain iterate
    assert (averaged.image - start).abs().mean() < (plain.image - start).abs().mean()


def test_adam_moments_carried_and_resized(content, style):
    """It hands Adam's moments to the next scale, resized with the image, with the step count kept."""
    made = []
    real = engine.make_optimizer

    def spy(settings, pixels, state=None):
        made.append(state)
        return real(settings, pixels, state)

    config = Config(size=48, steps=3, optimizer="adam", **{**BASE, "start_size": 24})
    from unittest import mock

    with mock.patch.object(engine, "make_optimizer", spy):
        result = api.stylize(content, style, config=config)
    assert made[0] is None
    second = made[1]
    (h, w) = result.sizes[1]
    assert second["exp_avg"].shape == (1, h, w, 3) and second["exp_avg_sq"].shape == (1, h, w, 3)
    assert float(second["step"]) == 3 and (second["exp_avg_sq"] >= 0).all()


def test_resize_state_keeps_second_moment_non_negative():
    """It resizes both moments to the new size and never lets the variance go below zero."""
    state = {"step": torch.tensor(5.0), "exp_avg": torch.randn(1, 4, 4, 3), "exp_avg_sq": torch.rand(1, 4, 4, 3)}
    state["exp_avg_sq"][0, 1, 1] = 0
    bigger = resize_state(state, (8, 6))
    assert bigger["exp_avg"].shape == (1, 8, 6, 3) and (bigger["exp_avg_sq"] >= 0).all()
    assert resize_state(None, (8, 6)) is None


def test_scales_from_size_halve_from_the_output():
    """It shrinks from size by scale_factor down to start_size (crowsonkb's schedule) when asked."""
    config = load_config(None, {"size": 512, "start_size": 128, "scale_factor": 2 ** 0.5, "scales_from": "size"})
    assert scale_sizes(config) == [128, 181, 256, 362, 512]
    assert scale_sizes(config.replace(scales_from="start")) == [128, 181, 256, 362, 512]
    # 500 / sqrt(2)^k rounded: 354, 250, 177 (125 is below start_size); growing from 128 differs
    assert scale_sizes(config.replace(size=500)) == [177, 250, 354, 500]
    assert scale_sizes(config.replace(size=500, scales_from="start")) == [128, 181, 256, 362, 500]


def test_first_steps_only_at_the_first_scale(content, style):
    """It runs first_steps at the coarsest scale and steps at every later one."""
    config = Config(size=48, steps=2, first_steps=5, **{**BASE, "start_size": 24})
    assert steps_per_scale(config, [24, 48]) == [5, 2]
    result = api.stylize(content, style, config=config)
    assert [row["scale"] for row in result.log] == [0] * 5 + [1] * 2


def test_replicate_padding_on_the_first_convolution_only():
    """It pads only the first convolution by replicating edge pixels when asked."""
    state = random_state_dict(0)
    network = VGGFeatures(state, ["relu2_1"], padding="replicate")
    convs = [m for m in network.body if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].padding_mode == "replicate" and all(c.padding_mode == "zeros" for c in convs[1:])
    flat = torch.full((1, 3, 8, 8), 0.7)
    plain = VGGFeatures(state, ["conv1_1"])(flat)["conv1_1"]
    replicated = VGGFeatures(state, ["conv1_1"], padding="replicate")(flat)["conv1_1"]
    # a flat image has flat features everywhere with replicated edges, not with zeros
    assert torch.allclose(replicated, replicated[..., 4:5, 4:5].expand_as(replicated), atol=1e-5)
    assert not torch.allclose(plain, plain[..., 4:5, 4:5].expand_as(plain), atol=1e-5)


def test_adam_betas_checked(runner, content, style, tmp_path):
    """It refuses Adam betas that are not two numbers in [0, 1)."""
    from helpers import error_line

    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST,
                                 "--adam-betas", "0.9"])
    assert result.exit_code == 2
    assert error_line(result) == "Error: 'adam_betas' must be two numbers in [0, 1), e.g. 0.9,0.999, got (0.9,)"
