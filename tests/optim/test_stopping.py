"""The plateau rule: a scale ends once its lowest loss stops falling, says so in --json, and the bar
still reaches its end."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import FAST
from nstcli.cli.main import nst
from nstcli.network.features import VGGFeatures
from nstcli.network.weights import random_state_dict
from nstcli.optim.engine import optimize
from nstcli.optim.optimizers import OptimizerSettings
from nstcli.optim.stopping import Plateau
from nstcli.terms.base import Term


def test_plateau_needs_a_full_window_before_it_judges():
    rule = Plateau(window=3, tolerance=0.01)
    assert not rule.reached([20.0, 4.0, 4.0, 4.0])  # three steps after the fall: not yet a full window flat
    assert rule.reached([20.0, 4.0, 4.0, 4.0, 4.0])


def test_plateau_compares_the_lowest_loss_a_window_apart():
    rule = Plateau(window=2, tolerance=0.1)
    assert not rule.reached([30.0, 10.0, 9.5, 8.9])  # fell 1.1 from 10 over two steps: more than 10 %
    assert rule.reached([30.0, 10.0, 9.5, 9.1])  # fell 0.9: less than 10 % of 10


def test_plateau_waits_for_the_loss_to_start_falling():
    """A flat start (L-BFGS's first steps from the photo) is not a plateau: the scale must first shed half
    of its first loss."""
    rule = Plateau(window=3, tolerance=0.05)
    flat = [8.71, 8.71, 8.70, 8.70, 8.70, 8.70, 8.70]
    assert not rule.reached(flat)
    assert rule.reached(flat + [1.0, 0.99, 0.99, 0.99])


@pytest.mark.parametrize("window, tolerance", [(0, 0.5), (5, 0.0)])
def test_plateau_off_never_stops(window, tolerance):
    rule = Plateau(window, tolerance)
    assert not rule.active
    assert not rule.reached([1.0] * 50)


class Falling(Term):
    """A loss that halves at the first step and then cannot improve: the rule stops it after its window."""

    name = "falling"
    layers = ("relu1_1",)

    def __init__(self):
        self.calls = 0

    def __call__(self, features, image):
        self.calls += 1
        return (features["relu1_1"] * 0).sum() + (1.0 if self.calls == 1 else 0.25)


def test_a_flat_loss_stops_after_its_window_and_says_why():
    random_network = VGGFeatures(random_state_dict(0), ["relu1_1"])
    image = torch.rand(1, 3, 32, 32)
    settings = OptimizerSettings("adam", 0.01, (0.9, 0.999))
    result = optimize(random_network, image, [Falling()], settings, steps=40, plateau=Plateau(5, 0.01))
    assert (result.steps, result.stopped) == (7, "plateau")
    unstopped = optimize(random_network, image, [Falling()], settings, steps=7)
    assert (unstopped.steps, unstopped.stopped) == (7, "steps")


def test_json_reports_each_scale_steps_and_why(runner, content, style, tmp_path):
    """--json gives every scale's given and run steps and why it ended; a tolerance of 1 stops every
    scale after its window, and the total counts the steps that ran."""
    args = ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST, "--steps", "30",
            "--start-size", "32", "--size", "64", "--stop-window", "4", "--stop-tolerance", "1", "--json"]
    result = runner.invoke(nst, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scale_steps"] == [{"given": 30, "ran": 5, "stopped": "plateau"},
                                   {"given": 30, "ran": 5, "stopped": "plateau"}]
    assert data["steps"] == 10


def test_stop_window_zero_runs_every_step(runner, content, style, tmp_path):
    args = ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), *FAST, "--steps", "25",
            "--stop-window", "0", "--stop-tolerance", "1", "--json"]
    result = runner.invoke(nst, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scale_steps"] == [{"given": 25, "ran": 25, "stopped": "steps"}]
