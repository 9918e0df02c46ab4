"""What a video run reports: each finished frame, the run's result, and the callback that watches both.

Shared by the optimisation loop (video/loop.py) and the fast network's loop (fast/video.py), so the
fast one needs nothing of the optimisation stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nstcli.reports import Callback


@dataclass
class FrameReport:
    """What the loop tells callbacks after each finished frame."""

    index: int  # 0-based
    total: int  # frames in the clip
    seconds: float  # this frame's optimisation and saving
    loss: float  # the frame's objective without the temporal term (comparable with `nst stylize`)
    temporal_error: float | None  # mean squared difference to the warped previous frame (reliable pixels)


class VideoCallback(Callback):
    """Watches a clip: frames as they finish, and (as an engine Callback) each frame's steps."""

    def on_video_start(self, total_frames: int, finished: int) -> None:
        """Before the first frame is computed; `finished` frames were kept from an earlier run."""

    def on_frame(self, report: FrameReport) -> None:
        pass

    def on_encode(self, output: Path) -> None:
        """All frames exist and the video is being encoded."""

    def on_video_end(self) -> None:
        pass


@dataclass
class VideoResult:
    output: Path
    frames: int
    seconds: float  # this call's time (frames kept from an earlier run cost nothing here)
    temporal_error: float | None  # mean over frames 2..n of the temporal error
    resumed_from: int  # frames that were already finished
    frame_log: list[dict]
    precision: str | None = None  # the network's, for the frames this call computed (None: it computed none)

    def summary(self) -> dict:
        """A JSON-ready description (what `nst video --json` prints)."""
        return {
            "output": str(self.output),
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "temporal_error": None if self.temporal_error is None else round(self.temporal_error, 8),
            "resumed_from": self.resumed_from,
            "precision": self.precision,
        }
