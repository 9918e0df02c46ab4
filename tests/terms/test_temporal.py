"""The temporal term: Ruder et al.'s masked squared difference to the warped previous frame."""

from __future__ import annotations

import pytest
import torch

from clips import pan_frames
from nstcli.video.flow import FlowEstimator
from nstcli.image.io import pil_to_tensor
from nstcli.terms.base import evaluate, layers_read
from nstcli.terms.temporal import TemporalTerm, temporal_error


def test_zero_for_a_static_clip_stylised_from_its_own_warp(tmp_path):
    """It is exactly zero when a still clip's frame equals the previous result warped onto it."""
    frame = pil_to_tensor(pan_frames(tmp_path, frames=1)[0])
    styled = torch.rand_like(frame, generator=torch.Generator().manual_seed(0))
    motion = FlowEstimator().motion(frame, frame)
    warped = motion.warp(styled)
    term = TemporalTerm(warped, motion.mask_tensor(), weight=100.0)
    assert float(term({}, warped)) == pytest.approx(0.0, abs=1e-9)
    assert float(term({}, styled)) == pytest.approx(0.0, abs=1e-9)


def test_value_is_weight_times_mean_over_reliable_pixels():
    """It averages the squared difference over reliable pixels and channels only, times the weight."""
    warped = torch.zeros(1, 3, 2, 2)
    image = torch.zeros(1, 3, 2, 2)
    image[..., 0, 0] = 0.5  # reliable: counts
    image[..., 1, 1] = 1.0  # unreliable: ignored
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    expected = 3 * 0.25 / (3 * 3)  # three channels of 0.25 over 3 reliable pixels x 3 channels
    assert float(temporal_error(image, warped, mask)) == pytest.approx(expected)
    assert float(TemporalTerm(warped, mask, 20.0)({}, image)) == pytest.approx(20 * expected)


def test_nothing_reliable_gives_zero():
    """It is zero, not NaN, for a frame whose flow is reliable nowhere (a scene cut)."""
    value = temporal_error(torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))
    assert float(value) == 0.0


def test_reads_no_layer_and_is_summed_by_name():
    """It asks the network for nothing and shows up as 'temporal' among the terms' values."""
    term = TemporalTerm(torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4), 2.0)
    assert layers_read([term]) == () and term.name == "temporal"
    total, values = evaluate([term], {}, torch.full((1, 3, 4, 4), 0.5))
    assert float(total) == pytest.approx(0.5) and float(values["temporal"]) == pytest.approx(0.5)


def test_gradient_pulls_towards_the_warped_frame_where_reliable():
    """It pushes reliable pixels towards the warped frame and leaves masked ones alone."""
    warped = torch.full((1, 3, 2, 2), 0.8)
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    image = torch.full((1, 3, 2, 2), 0.2, requires_grad=True)
    TemporalTerm(warped, mask, 1.0)({}, image).backward()
    assert (image.grad[..., 0, 0] < 0).all() and (image.grad[..., 0, 1] == 0).all()


def test_mask_and_frame_sizes_must_agree():
    """It refuses a mask of another size than the warped frame."""
    with pytest.raises(ValueError, match="mask is"):
        TemporalTerm(torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 5), 1.0)
