"""Optical flow, its reliability mask and warping (Ruder et al.'s building blocks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clips import jump_frames, pan_frames
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


def test_mask_drops_an_object_that_jumps_further_than_the_flow_follows():
    """It masks the pixels whose colour differs from where the flow says they were, where
    Ruder et al.'s forward-backward test alone lets most of them through."""
    previous, current = (np.asarray(image) for image in jump_frames())
    motion = flow.FlowEstimator().motion(previous, current)
    now = (slice(16, 32), slice(32, 48))  # the square in the current frame
    before = (slice(16, 32), slice(8, 24))  # where it was: background uncovered
    assert not motion.mask[now].any() and not motion.mask[before].any()
    assert motion.consistent[now].mean() > 0.5  # the break: the flows agree there, and are wrong
    assert motion.mask[:10].mean() > 0.9 and motion.mask[38:].mean() > 0.9  # the still background far from it


def test_mismatch_is_judged_by_colour_along_the_flow():
    """It flags a pixel whose colour differs from its source by more than the threshold, and its
    neighbours within the margin, and nothing in a frame that matches."""
    previous = np.full((20, 20, 3), 100, np.uint8)
    current = previous.copy()
    # A 5x5 patch 0.3 brighter on one channel: mean square 0.03 > 0.01; the 3x3 blur takes its edge
    # pixels to 0.225 (0.017, still over) and the ring outside to 0.075 (0.002, under).
    current[8:13, 8:13, 0] = 100 + round(255 * 0.3)
    zero = np.zeros((20, 20, 2), np.float32)
    wrong = flow.mismatched(previous, current, zero)
    margin = flow.MISMATCH_MARGIN
    assert wrong[10, 10] and wrong[10, 12 + margin] and not wrong[10, 13 + margin]
    assert wrong.sum() <= (5 + 2 * margin) ** 2
    assert not flow.mismatched(previous, previous, zero).any()


def test_flow_picture_colours_direction_and_length():
    """It draws still pixels white and a rightward flow red, saturated at the longest vector."""
    field = np.zeros((2, 2, 2), np.float32)
    field[0, 0] = (4, 0)
    field[0, 1] = (2, 0)
    picture = flow.flow_picture(field)
    assert picture.shape == (2, 2, 3) and picture.dtype == np.uint8
    assert tuple(picture[1, 1]) == (255, 255, 255)
    assert tuple(picture[0, 0]) == (255, 0, 0)
    assert picture[0, 1, 0] == 255 and 120 < picture[0, 1, 1] < 135  # half as long: half saturated
