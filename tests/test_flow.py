"""Optical flow, its reliability mask and warping (Ruder et al.'s building blocks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clips import pan_frames
from nstcli.video import flow
from nstcli.image.io import pil_to_tensor


def test_flow_of_a_shifted_image_recovers_the_shift(tmp_path):
    """It measures a 3 px right, 2 px down pan as forward (3, 2) and backward (-3, -2)."""
    first, second = pan_frames(tmp_path, frames=2, step=(3, 2))[::-1]  # content moves right and down
    motion = flow.FlowEstimator().motion(first, second)
    inner = (slice(8, -8), slice(8, -8))
    assert np.median(motion.forward[inner], axis=(0, 1)) == pytest.approx([3, 2], abs=0.25)
    assert np.median(motion.backward[inner], axis=(0, 1)) == pytest.approx([-3, -2], abs=0.25)


def test_mask_drops_the_band_coming_into_view(tmp_path):
    """It masks the columns and rows a pan brings into view and keeps the rest."""
    first, second = pan_frames(tmp_path, frames=2, step=(3, 2))[::-1]
    mask = flow.FlowEstimator().motion(first, second).mask
    assert not mask[:, :2].any() and not mask[:1, :].any()  # new on the left and top
    assert mask[4:, 5:].mean() > 0.95


def test_consistency_mask_drops_disocclusion_and_keeps_agreeing_motion():
    """It masks background uncovered behind a moving square, and the square's edges, keeping the rest."""
    height, width = 32, 48
    # A 10x10 square moves 4 px right over a still background: seen from the current frame, the
    # square's pixels came from 4 px to the left, and the 4-px strip it uncovered has no match.
    backward = np.zeros((height, width, 2), np.float32)
    backward[10:20, 24:34, 0] = -4
    forward = np.zeros((height, width, 2), np.float32)
    forward[10:20, 20:30, 0] = 4
    mask = flow.reliable(backward, forward)
    assert not mask[10:20, 20:24].any()  # uncovered background: the flows do not cancel
    assert mask[12:18, 26:32].all()  # inside the square the two flows undo each other
    assert mask[:8].all() and mask[22:].all()  # still background far from the square
    assert not mask[10:20, 23:25].any()  # the motion boundary on the square's left edge


def test_consistency_tolerance_grows_with_motion():
    """It accepts a round-trip error that is small next to a large motion (Ruder et al.'s 0.01 |w|^2 + 0.5)."""
    backward = np.full((8, 40, 2), (-20.0, 0.0), np.float32)
    forward = np.full((8, 40, 2), (21.5, 0.0), np.float32)  # 1.5 px off: 2.25 < 0.01 * 862 + 0.5 = 9.1
    mask = flow.reliable(backward, forward)
    assert mask[:, 20:].all()
    assert not mask[:, :20].any()  # these came from beyond the previous frame's left edge
    forward[:] = (24.0, 0.0)  # 4 px off: 16 > 0.01 * 976 + 0.5
    assert not flow.reliable(backward, forward).any()


def test_warp_of_a_static_clip_is_identity(tmp_path):
    """It leaves an image unchanged when warped by the flow of a still clip."""
    image = pil_to_tensor(pan_frames(tmp_path, frames=1)[0])
    motion = flow.FlowEstimator().motion(image, image)
    assert np.abs(motion.backward).max() < 1e-3 and motion.mask.all()
    assert torch.allclose(motion.warp(image), image, atol=1e-5)


def test_warp_moves_the_previous_frame_onto_the_current(tmp_path):
    """It warps the previous frame of a pan onto the current one wherever the flow is reliable."""
    first, second = pan_frames(tmp_path, frames=2, step=(3, 2))[::-1]
    motion = flow.FlowEstimator().motion(first, second)
    previous, current = pil_to_tensor(first), pil_to_tensor(second)
    mask = motion.mask_tensor()
    error = ((motion.warp(previous) - current) ** 2 * mask).sum() / (3 * mask.sum())
    assert error < 0.1 * ((previous - current) ** 2).mean()


def test_warp_by_integer_flow_shifts_pixels():
    """It reads each pixel from x + flow(x), repeating the edge beyond the border."""
    image = torch.arange(20, dtype=torch.float32).view(1, 1, 4, 5)
    shift = np.zeros((4, 5, 2), np.float32)
    shift[..., 0] = 1  # read from one pixel to the right
    warped = flow.warp(image, shift)
    assert torch.equal(warped[0, 0, :, :4], image[0, 0, :, 1:])
    assert torch.equal(warped[0, 0, :, 4], image[0, 0, :, 4])


def test_frames_of_different_sizes_are_refused():
    """It refuses to compute flow between frames of different sizes."""
    with pytest.raises(ValueError, match="differ in size"):
        flow.FlowEstimator().flow(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))
