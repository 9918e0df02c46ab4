"""What a path is, checked once for every file nst reads or writes: a symbolic link loop is named as one."""

from __future__ import annotations

from helpers import FAST, error_line
from nstcli.cli.main import nst


def test_symlink_loops_are_named(runner, content, style, tmp_path):
    """It says 'symbolic link loop' for a looping weights path, batch output folder, image, config and -o folder."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST[2:],
                                 "--weights", str(loop)])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: weights file {loop} is a symbolic link loop; point it at a "
                                  ".pth/.pt/.safetensors file")
    batch = runner.invoke(nst, ["batch", str(content), "--style", str(style), "-o", str(loop), *FAST])
    assert batch.exit_code == 2
    assert error_line(batch) == f"Error: output folder {loop} is a symbolic link loop; give a folder to -o"
    image = runner.invoke(nst, ["stylize", str(loop), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert image.exit_code == 1
    assert error_line(image) == f"Error: image {loop} is a symbolic link loop; point it at an image file"
    config = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                 "--config", str(loop)])
    assert config.exit_code == 2
    assert error_line(config) == f"Error: config file {loop} is a symbolic link loop; give a .yaml file"
    batch_style = runner.invoke(nst, ["batch", str(content), "--style", str(loop), "-o", str(tmp_path / "b"), *FAST])
    assert batch_style.exit_code == 1
    assert error_line(batch_style) == f"Error: style image {loop} is a symbolic link loop; point it at an image file"
    inside = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(loop / "o.png"), *FAST])
    assert inside.exit_code == 1
    assert error_line(inside) == (f"Error: cannot create the output folder {loop}: {loop} is a symbolic link "
                                  "loop; choose another -o path")
