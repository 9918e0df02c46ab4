"""Optical flow between consecutive frames, where it can be trusted, and warping by it.

Video stylisation carries the previous stylised frame over to the next one along the motion of the
content (Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos", GCPR 2016). This module
holds the three pieces of that:

- `FlowEstimator`: OpenCV's DIS optical flow (Kroeger et al., ECCV 2016), which is fast on a CPU and
  needs no model download, computed forward (previous -> current) and backward (current -> previous).
- `reliable`: the paper's mask of pixels whose flow holds up: the two flows must undo each other
  (else the pixel was occluded or disoccluded) and the pixel must not sit on a motion boundary.
- `mismatched`: the pixels where the previous frame carried along the flow does not look like the
  current one. Ruder et al.'s test cannot see a flow that is wrong in the same way both ways: DIS
  follows motions up to a few pixels per pyramid level, and an object that jumps further than that
  between two frames (a disc crossing a 128 px frame in four) gets the background's flow forward
  and backward; the flows agree, so the pixel passes as reliable, and the previous frame's
  background, painted, is held where the object now is. Comparing the frames themselves catches it.
- `warp`: an image resampled along a flow with bilinear interpolation.

Flow convention: a flow field has shape (H, W, 2) holding (dx, dy) in pixels, and `flow(x)` points
from pixel x of the frame it is defined on to where that point is in the other frame. The backward
flow of the current frame therefore says where each of its pixels was in the previous frame, which
is exactly what warping the previous result onto the current frame needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Ruder et al.'s thresholds (section 3.2). Disocclusion: forward and backward flow should cancel,
# |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5, the tolerance growing with the motion. Motion
# boundary: |grad w^u|^2 + |grad w^v|^2 > 0.01 |w^|^2 + 0.002.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002
# Photometric test: a pixel whose colour differs from the previous frame's along the flow by more
# than this mean squared difference over the channels (in [0, 1] units: 0.1 RMS, about 25 of 255
# levels), after a 3x3 blur that keeps sub-pixel resampling of fine texture under it, is not the
# same point. On the benchmark clips the error is bimodal: under 0.001 for 90% of the pixels the
# flow explains, 0.07 to 0.15 where a moving object was or is.
MISMATCH = 0.01
# Pixels next to a mismatch are dropped too (a square of this many pixels each way): an object's
# antialiased rim blends the two motions, and below the threshold it still is not the background.
MISMATCH_MARGIN = 2


def _cv2():
    # Imported on use: OpenCV is an optional dependency (the `video` extra) only `nst video` needs.
    from nstcli.extras import require

    return require("cv2", "video", "video", "OpenCV")


def to_gray(image) -> np.ndarray:
    """A frame as 8-bit luma, the input DIS works on: from a (1, 3, H, W) / (3, H, W) tensor in [0, 1],
    an (H, W, 3) uint8 array, or a PIL image."""
    if isinstance(image, torch.Tensor):
        tensor = image[0] if image.dim() == 4 else image
        array = tensor.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    else:
        array = np.asarray(image)
    if array.ndim == 2:
        return np.ascontiguousarray(array, dtype=np.uint8)
    array = array[..., :3].astype(np.float32)
    # ITU-R BT.601 luma, as OpenCV's own RGB -> gray conversion.
    gray = array[..., 0] * 0.299 + array[..., 1] * 0.587 + array[..., 2] * 0.114
    return np.ascontiguousarray(np.clip(gray + 0.5, 0, 255).astype(np.uint8))


def sample(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`field` (H, W, C) read at x + flow(x) with bilinear interpolation, edges repeated."""
    cv2 = _cv2()
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x + flow[..., 0].astype(np.float32)
    map_y = grid_y + flow[..., 1].astype(np.float32)
    result = cv2.remap(field.astype(np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return result.reshape(field.shape)


def reliable(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of the current frame's pixels whose backward flow can be trusted.

    `backward` is the flow current -> previous, `forward` previous -> current. A pixel is dropped
    where following the backward flow and then the forward flow does not bring it home (it was
    hidden in the previous frame, or the flow is wrong there), and on motion boundaries, where
    flow estimates smear across the two motions.
    """
    forward_there = sample(forward, backward)  # w~(x) = w(x + w^(x))
    round_trip = np.sum((forward_there + backward) ** 2, axis=-1)
    magnitudes = np.sum(forward_there ** 2, axis=-1) + np.sum(backward ** 2, axis=-1)
    occluded = round_trip > CONSISTENCY_RELATIVE * magnitudes + CONSISTENCY_ABSOLUTE
    # Pixels whose flow leads out of the previous frame came into view this frame (a pan's leading
    # edge): the forward flow sampled there is only the border repeated, which would pass the test
    # above, so they are dropped explicitly.
    height, width = backward.shape[:2]
    xs = np.arange(width, dtype=np.float32)[None, :] + backward[..., 0]
    ys = np.arange(height, dtype=np.float32)[:, None] + backward[..., 1]
    outside = (xs < 0) | (xs > width - 1) | (ys < 0) | (ys > height - 1)

    # Central differences of each flow component (one-sided at the border).
    grad_u_y, grad_u_x = np.gradient(backward[..., 0])
    grad_v_y, grad_v_x = np.gradient(backward[..., 1])
    gradient = grad_u_x ** 2 + grad_u_y ** 2 + grad_v_x ** 2 + grad_v_y ** 2
    boundary = gradient > BOUNDARY_RELATIVE * np.sum(backward ** 2, axis=-1) + BOUNDARY_ABSOLUTE
    return ~(occluded | outside | boundary)


def _rgb(image) -> np.ndarray:
    """A frame as (H, W, C) float32 in [0, 1], from the inputs `to_gray` takes."""
    if isinstance(image, torch.Tensor):
        tensor = image[0] if image.dim() == 4 else image
        return tensor.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    return array[..., :3].astype(np.float32) / 255


def mismatched(previous, current, backward: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of the current frame's pixels that do not look like where the flow says
    they were in the previous frame (`backward`: current -> previous), widened by `MISMATCH_MARGIN`."""
    cv2 = _cv2()
    carried = cv2.GaussianBlur(sample(_rgb(previous), backward), (3, 3), 0)
    now = cv2.GaussianBlur(_rgb(current), (3, 3), 0)
    if carried.ndim == 2:  # cv2 drops a single channel's axis
        carried, now = carried[..., None], now[..., None]
    wrong = (np.mean((carried - now) ** 2, axis=-1) > MISMATCH).astype(np.uint8)
    side = 2 * MISMATCH_MARGIN + 1
    return cv2.dilate(wrong, np.ones((side, side), np.uint8)).astype(bool)


@dataclass
class Motion:
    """How the current frame relates to the previous one."""

    backward: np.ndarray  # (H, W, 2) flow current -> previous
    forward: np.ndarray  # (H, W, 2) flow previous -> current
    mask: np.ndarray  # (H, W) bool, True where the backward flow is reliable: consistent and matching
    consistent: np.ndarray | None = None  # (H, W) bool, Ruder et al.'s test alone (`reliable`)

    def mask_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The mask as a (1, 1, H, W) float tensor, the shape the temporal term multiplies by."""
        return torch.from_numpy(self.mask.astype(np.float32))[None, None].to(device)

    def warp(self, previous: torch.Tensor) -> torch.Tensor:
        """The previous frame's image moved onto the current frame."""
        return warp(previous, self.backward)


class FlowEstimator:
    """DIS optical flow, built once and reused for every pair of frames of a clip."""

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        self.dis = cv2.DISOpticalFlow_create(presets[preset])

    def flow(self, source, target) -> np.ndarray:
        """(H, W, 2) flow from `source` to `target`: source(x) matches target(x + flow(x))."""
        source, target = to_gray(source), to_gray(target)
        if source.shape != target.shape:
            raise ValueError(f"frames differ in size: {source.shape[::-1]} and {target.shape[::-1]}")
        return self.dis.calc(source, target, None)

    def motion(self, previous, current) -> Motion:
        """Forward and backward flow between two consecutive frames, and where they agree."""
        forward = self.flow(previous, current)
        backward = self.flow(current, previous)
        consistent = reliable(backward, forward)
        mask = consistent & ~mismatched(previous, current, backward)
        return Motion(backward=backward, forward=forward, mask=mask, consistent=consistent)


def warp(image: torch.Tensor, flow: np.ndarray | torch.Tensor) -> torch.Tensor:
    """`image` (N, C, H, W) resampled at x + flow(x): bilinear, pixels beyond the edge repeat it.

    With flow the backward flow of the current frame, this moves the previous frame's image onto the
    current frame. Border padding rather than zeros: a band of black entering from the edge would be
    a strong, wrong target there (those pixels are masked out of the temporal loss anyway, but the
    warped image is also the optimiser's starting point).
    """
    flow = torch.as_tensor(flow, dtype=image.dtype, device=image.device)
    height, width = image.shape[-2:]
    if flow.shape[:2] != (height, width):
        raise ValueError(f"flow is {tuple(flow.shape[:2])} but the image is {(height, width)}")
    ys, xs = torch.meshgrid(torch.arange(height, dtype=image.dtype, device=image.device),
                            torch.arange(width, dtype=image.dtype, device=image.device), indexing="ij")
    # grid_sample wants positions in [-1, 1]; with align_corners=True, -1 and 1 are the centres of
    # the edge pixels, so a zero flow samples every pixel centre exactly (a static clip is unchanged).
    x = (xs + flow[..., 0]) * (2 / max(width - 1, 1)) - 1
    y = (ys + flow[..., 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack((x, y), dim=-1).unsqueeze(0).expand(image.shape[0], -1, -1, -1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def flow_picture(flow: np.ndarray, largest: float | None = None) -> np.ndarray:
    """A flow field as an (H, W, 3) uint8 picture in the usual colour wheel: hue the direction,
    saturation the length (full at `largest` px, by default the field's own longest vector)."""
    cv2 = _cv2()
    length = np.hypot(flow[..., 0], flow[..., 1])
    largest = float(largest if largest is not None else length.max())
    hsv = np.empty(flow.shape[:2] + (3,), np.uint8)
    # OpenCV's 8-bit hue runs 0..179 for 0..360 degrees.
    hsv[..., 0] = (np.degrees(np.arctan2(flow[..., 1], flow[..., 0])) % 360 / 2).astype(np.uint8)
    hsv[..., 1] = np.clip(255 * length / max(largest, 1e-6), 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
