"""Pictures about a run, drawn with Pillow: labelled image sheets and loss curves."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_LABEL_HEIGHT = 18
_GAP = 4


def labelled_sheet(images: Sequence[Image.Image], labels: Sequence[str], columns: int | None = None) -> Image.Image:
    """Images side by side (wrapping after `columns`), each with its label underneath.

    Every image is scaled to fit one cell (the largest image's width and height), so the scales of a
    coarse-to-fine run line up at the same displayed size.
    """
    if not images:
        raise ValueError("no images to put on a sheet")
    columns = columns or min(len(images), 6)
    rows = math.ceil(len(images) / columns)
    cell_w = max(im.width for im in images)
    cell_h = max(im.height for im in images)
    font = ImageFont.load_default()
    sheet = Image.new("RGB", (columns * (cell_w + _GAP) + _GAP, rows * (cell_h + _LABEL_HEIGHT + _GAP) + _GAP),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for index, (image, label) in enumerate(zip(images, labels)):
        row, column = divmod(index, columns)
        scale = min(cell_w / image.width, cell_h / image.height)
        fitted = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                              Image.Resampling.LANCZOS)
        x = _GAP + column * (cell_w + _GAP)
        y = _GAP + row * (cell_h + _LABEL_HEIGHT + _GAP)
        sheet.paste(fitted, (x + (cell_w - fitted.width) // 2, y + (cell_h - fitted.height) // 2))
        draw.text((x + 2, y + cell_h + 3), label, fill="black", font=font)
    return sheet


def loss_curve(rows: Sequence[dict], keys: Sequence[str] | None = None,
               size: tuple[int, int] = (640, 360)) -> Image.Image:
    """A log-scale plot of the loss terms per step (rows as kept by callbacks.LossLog).

    `keys` defaults to every term the rows hold (whatever terms the run had), not the total.
    """
    if keys is None:
        keys = list(dict.fromkeys(k for row in rows for k in row if k not in ("step", "scale", "loss")))
    colours = {"content": (31, 119, 180), "style": (214, 39, 40), "tv": (44, 160, 44), "loss": (0, 0, 0),
               "temporal": (148, 103, 189)}
    width, height = size
    left, right, top, bottom = 60, 12, 12, 34
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    series = {key: [(r["step"], r[key]) for r in rows if r.get(key, 0) > 0] for key in keys}
    series = {key: points for key, points in series.items() if points}
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    if not series:
        draw.text((left + 8, top + 8), "no loss recorded", fill="black", font=font)
        return image
    steps = [step for points in series.values() for step, _ in points]
    values = [math.log10(v) for points in series.values() for _, v in points]
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = math.floor(min(values)), math.ceil(max(values))
    if y1 == y0:
        y1 = y0 + 1

    def at(step, value):
        x = left + (step - x0) / (x1 - x0) * (width - left - right)
        y = height - bottom - (math.log10(value) - y0) / (y1 - y0) * (height - top - bottom)
        return x, y

    for decade in range(y0, y1 + 1):
        _, y = at(x0, 10.0**decade)
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((4, y - 6), f"1e{decade}", fill="black", font=font)
    for step in (x0, (x0 + x1) // 2, x1):
        x, _ = at(step, 10.0**y0)
        draw.text((x - 8, height - bottom + 4), str(step), fill="black", font=font)
    draw.text((width // 2 - 12, height - 14), "step", fill="black", font=font)
    legend_x = left + 8
    for key, points in series.items():
        draw.line([at(s, v) for s, v in points] if len(points) > 1 else [at(*points[0]), at(*points[0])],
                  fill=colours.get(key, (100, 100, 100)), width=2)
        draw.text((legend_x, top + 4), key, fill=colours.get(key, (100, 100, 100)), font=font)
        legend_x += 60
    return image


def progress_sheet_path(output: str | os.PathLike) -> Path:
    """out.png -> out_progress.png beside it (--contact-sheet)."""
    output = Path(output)
    return output.with_name(f"{output.stem}_progress.png")


def loss_curve_path(output: str | os.PathLike) -> Path:
    """out.png -> out_loss.png beside it (--loss-curve)."""
    output = Path(output)
    return output.with_name(f"{output.stem}_loss.png")


def remove_stale_extras(output: str | os.PathLike, written: Sequence[os.PathLike]) -> None:
    """Delete the sheet and curve of an earlier run into `output` that this run did not rewrite.

    Left beside a new output they would pass for pictures of it, as stale checkpoints would.
    """
    kept = {Path(path) for path in written}
    for path in (progress_sheet_path(output), loss_curve_path(output)):
        if path not in kept and path.is_file():
            path.unlink()


def save_extras(output, saver, log, *, sheet: bool, curve: bool) -> list:
    """The optional contact sheet of checkpoints (`sheet`) and the loss curve (`curve`), beside the output."""
    from nstcli.writes import write_file

    written = []
    if sheet and saver and saver.saved:
        frames = [Image.open(path).convert("RGB") for _, path in saver.saved]
        picture = labelled_sheet(frames, [f"step {step}" for step, _ in saver.saved])
        path = progress_sheet_path(output)
        written.append(write_file(path, lambda handle: picture.save(handle, format="PNG")))
    if curve and log.rows:
        drawn = loss_curve(log.rows)
        path = loss_curve_path(output)
        written.append(write_file(path, lambda handle: drawn.save(handle, format="PNG")))
    remove_stale_extras(output, written)
    return written
