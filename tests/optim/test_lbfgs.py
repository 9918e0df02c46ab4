"""L-BFGS from an already optimal start: a zero first gradient takes a zero step, and a run from it ends
(a style weight of 0 from the content image, a clip whose frames are the style image)."""

from __future__ import annotations

import json

import torch

from helpers import FAST, VIDEO_FAST, make_image, video
from nstcli.cli.main import nst
from nstcli.optim.lbfgs import LBFGS


def test_lbfgs_first_step_from_a_zero_gradient_stays_put():
    """It takes a zero step (no ZeroDivisionError) when the first gradient is exactly zero."""
    x = torch.ones(3, requires_grad=True)
    optimiser = LBFGS([x])

    def closure():
        optimiser.zero_grad()
        loss = (x.detach() * 0).sum() + 0 * x.sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    optimiser.step(closure)
    assert torch.equal(x.detach(), torch.ones(3))


def test_style_weight_zero_from_the_content_runs(runner, content, tmp_path):
    """It finishes --style-weight 0 from the content image (a zero gradient at step 1), exit 0."""
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(content), "-o", str(out), *FAST, "--style-weight", "0",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"]["loss"] == 0
    assert out.is_file()


def test_clip_whose_frames_are_the_style_image_runs(runner, tmp_path):
    """It stylises a clip whose frames are the style image itself (zero gradient at frame 1), exit 0."""
    folder = tmp_path / "frames"
    picture = make_image(folder / "f1.png", size=(48, 32), seed=3)
    make_image(folder / "f2.png", size=(48, 32), seed=3)
    result = video(runner, folder, picture, "-o", tmp_path / "out", *VIDEO_FAST, "--steps", "2")
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == ["frame_000001.png", "frame_000002.png"]
