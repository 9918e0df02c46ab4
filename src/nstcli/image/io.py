"""Reading images into tensors and writing tensors back out, safely.

- PNG, JPEG, WebP, TIFF, BMP and GIF only: Pillow would also hand a PostScript file (whatever its
  name) to Ghostscript, an external program, so no other decoder is ever asked. EXIF orientation applied; palette, grayscale, 16-bit and CMYK converted to
  RGB; transparent pixels composited onto white (style transfer has no alpha to optimise); the first
  frame of an animation.
- Resized with Lanczos so the longest side is `size` (aspect ratio kept).
- Written atomically through writes.py: to a temporary file in the target folder, then renamed, so
  a full disk, a crash or Ctrl-C never leaves a half-written image behind, and a failed write is one
  WriteError naming the file; the file gets the permissions any program would give it.
- torch is imported only by the functions that make or take tensors, so the CLI can check paths
  before paying for it.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from nstcli import paths
from nstcli.errors import ConfigError, ImageError, first_line
# refuse_overwriting_inputs lives with the other output checks; callers still import it from here.
from nstcli.outputs import OUTPUT_FORMATS, check_name, check_output, mode_for, refuse_overwriting_inputs  # noqa: F401
from nstcli.writes import write_file

if TYPE_CHECKING:
    import torch

# Pillow's format names for what the README documents as inputs (the JPEGs cameras write with a
# second, preview picture inside open as JPEG too: Pillow calls them MPO).
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF")
# Pillow's plugin module for each format read or written above.
PLUGINS = {"PNG": "PngImagePlugin", "JPEG": "JpegImagePlugin", "WEBP": "WebPImagePlugin", "TIFF": "TiffImagePlugin",
           "BMP": "BmpImagePlugin", "GIF": "GifImagePlugin"}
# Refuse inputs above this many pixels before decoding them: a small file can declare a huge size
# (a "decompression bomb") and exhaust memory. 100 MP is more than any camera produces.
MAX_INPUT_PIXELS = 100_000_000


@functools.cache
def register_formats() -> None:
    """Import the plugins of the formats nstcli reads and writes, and no others.

    `Image.open(..., formats=...)` and `save(format=...)` import every plugin Pillow has (about forty:
    PDF, ICNS, FPX, ...; 0.03 to 0.08 s of each `nst apply`'s start) as soon as one of the formats
    asked for is not registered yet. With these six registered first, the same formats are tried in
    the same order and nothing else is imported.
    """
    for module in PLUGINS.values():
        try:
            importlib.import_module(f"PIL.{module}")
        except ImportError:  # a Pillow built without one: Image.open then falls back to loading all, as before
            pass


def _flatten_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16/32-bit grayscale: scale to 8 bits instead of letting convert() clip everything to white.
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        mode = "L"
    if mode == "F":
        image = image.point(lambda v: v * 255).convert("L")
        mode = "L"
    # A tRNS colour key in a palette, grayscale or RGB PNG marks transparent pixels just as an alpha
    # channel does; treat both alike.
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            mode in ("P", "L", "RGB") and "transparency" in image.info):
        return _flatten_alpha(image)
    if mode != "RGB":
        return image.convert("RGB")
    return image


def _too_many_pixels(path: Path, pixels: int) -> ImageError:
    return ImageError(f"image {path} declares {pixels / 1e6:.0f} MP, more than the "
                      f"{MAX_INPUT_PIXELS // 1_000_000} MP limit (a possible decompression bomb); "
                      "shrink it first")


def check_input_file(path: str | os.PathLike) -> Path:
    """What can be known about an input image without reading it; ImageError (exit 1) if it cannot be one."""
    # A FIFO would block forever and a device never ends: only regular files are read.
    path = paths.check_file(path, ImageError, {
        paths.MISSING: "image {path} does not exist; check the path",
        paths.LOOP: "image {path} is a symbolic link loop; point it at an image file",
        paths.DENIED: "image {path} cannot be read (permission denied)",
        paths.FOLDER: "image {path} is a folder, not an image file",
        paths.OTHER: "image {path} is not a regular file; give an image file"})
    if not os.access(path, os.R_OK):
        raise ImageError(f"image {path} cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise ImageError(f"image {path} is empty (0 bytes); replace it with a real image")
    return path


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and decode an image file as an RGB PIL image, or raise ImageError saying why not."""
    path = check_input_file(path)
    try:
        # Pillow's warnings (corrupt EXIF, odd palettes) are kept and repeated below naming the file.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Pillow warns from ~89 MP and refuses from ~179 MP on its own; our limit sits between,
            # so its warning is noise and its refusal is reported in our words below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            register_formats()
            with Image.open(path, formats=INPUT_FORMATS) as image:
                width, height = image.size
                # Checked on the header alone, before a single pixel is decoded or allocated.
                if width * height > MAX_INPUT_PIXELS:
                    raise _too_many_pixels(path, width * height)
                image.seek(0)  # first frame of an animation
                image = ImageOps.exif_transpose(image)
                image.load()
                rgb = _to_rgb(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"image {path} is not an image Pillow can read; give a PNG, JPEG, WebP, "
                         "TIFF, BMP or GIF file") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(path, int(found.group(1)) if found else 2 * Image.MAX_IMAGE_PIXELS) from None
    except PermissionError:
        raise ImageError(f"image {path} cannot be read (permission denied)") from None
    except MemoryError:
        raise ImageError(f"image {path} is too large to decode in the memory available; "
                         "shrink it first") from None
    except Exception as exc:
        # Pillow's decoders meet hostile files with whatever their parsing code raises (OSError,
        # SyntaxError, struct.error, IndexError, ...): all of them mean the same to the user.
        reason = first_line(exc)
        # Chained so that `nst --debug` shows where in Pillow the file was rejected.
        raise ImageError(f"image {path} is damaged or truncated ({reason}); re-export or replace it") from exc
    for message in dict.fromkeys(str(warning.message).strip() for warning in caught):
        warnings.warn(f"image {path}: {message}", UserWarning, stacklevel=2)
    return rgb


def fit_longest(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) of a picture of `size` (width, height) scaled so its longest side is `longest`,
    the aspect ratio kept: the one rule every resize, plan and frame size follows."""
    width, height = size
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_longest(image: Image.Image, size: int) -> Image.Image:
    """Scale so the longest side is `size` pixels, keeping the aspect ratio."""
    new = fit_longest(image.size, size)
    if new == image.size:
        return image
    return image.resize(new, Image.Resampling.LANCZOS)


def style_side(image_size: tuple[int, int], longest: int) -> int:
    """The longest side a style image is used at: `longest`, but never more than its own.

    A painting enlarged past its own pixels shows the network smooth gradients where the painting has
    strokes, and the output copies that blur. So --style-scale sets the style's size relative to the
    output only up to the image's own resolution; beyond it, a larger output gets the painting's strokes
    at the size they have in the file (a larger scan of the painting gives larger strokes).
    """
    return min(longest, max(image_size))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (1, 3, H, W) in [0, 1]."""
    import torch

    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    width, height = image.size
    return data.view(height, width, 3).permute(2, 0, 1).unsqueeze(0).float().div_(255)


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> RGB PIL image (rounded as torchvision does)."""
    import torch

    if tensor.dim() == 4:
        tensor = tensor[0]
    array = tensor.detach().float().cpu().clamp(0, 1).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).contiguous().numpy())


def prepare(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an image to the device in the memory layout the convolutions run fastest in."""
    import torch

    # channels_last lets oneDNN (CPU) and cuDNN (GPU) skip layout conversions in every conv.
    return image.to(device).contiguous(memory_format=torch.channels_last)


def resize_tensor(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample an intermediate result to the next scale (bicubic, kept in [0, 1])."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    import torch.nn.functional as F

    return F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp_(0, 1)


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Read an image file as a (1, 3, H, W) tensor in [0, 1], longest side `size` if given."""
    image = open_image(path)
    if size is not None:
        image = resize_longest(image, size)
    return pil_to_tensor(image)


def by_extension(path: str | os.PathLike, table: dict[str, str], refusal: str) -> str:
    """`table`'s entry for the path's extension; else a usage error (exit 2): `refusal` formatted with
    {path}, {suffix} and {known} (the extensions the table knows)."""
    suffix = Path(path).suffix.lower()
    if suffix not in table:
        raise ConfigError(refusal.format(path=path, suffix=suffix, known=", ".join(table)))
    return table[suffix]


def output_format(path: str | os.PathLike) -> str:
    """Pillow format for an output path; an unknown extension is a usage error (exit 2)."""
    return by_extension(path, OUTPUT_FORMATS, "output {path} has unknown extension '" +
                        ("{suffix}" if Path(path).suffix else "(none)") + "'; use one of {known}")


def check_output_name(path: str | os.PathLike) -> Path:
    """Usage errors in an -o value (exit 2): it names a folder, or has an unknown extension."""
    return check_name(path, OUTPUT_FORMATS, "out.png")


def check_output_path(path: str | os.PathLike, no_clobber: bool = False) -> Path:
    """Everything that can be checked about an output image path before computing anything (outputs.py).

    Mistakes in the -o value itself (a folder, an unknown extension) are usage errors (exit 2);
    a folder that cannot be created or written, or an existing file with `no_clobber`, stop the
    run (exit 1). A missing parent folder is created (scripts write into fresh folders); an
    existing file is replaced unless `no_clobber`.
    """
    return check_output(path, OUTPUT_FORMATS, "out.png", no_clobber=no_clobber)


def save_image(tensor: torch.Tensor, path: str | os.PathLike, no_clobber: bool = False, **how) -> Path:
    """Write a result image atomically; JPEG and WebP at quality 95 (Pillow's default 75 blurs texture).

    `how`: what a failed write suggests instead (writes.write_file's `elsewhere`, `what`)."""
    path = Path(path)
    fmt = output_format(path)
    image = tensor_to_pil(tensor)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    register_formats()
    return write_file(path, lambda handle: image.save(handle, format=fmt, **options), no_clobber=no_clobber, **how)


def save_checkpoint(tensor: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a checkpoint image atomically through torchvision's save_image."""
    from torchvision.utils import save_image as tv_save_image

    path = Path(path)
    fmt = output_format(path)
    picture = tensor.detach().float().cpu().clamp(0, 1)
    return write_file(path, lambda handle: tv_save_image(picture, handle, format=fmt))
