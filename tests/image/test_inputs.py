"""Input images: every kind of bad file gives one Error: line; every odd but valid one is read right."""

import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import FAST, error_line, make_image, no_network
from nstcli import api
from nstcli.cli.main import nst
from nstcli.errors import ImageError
from nstcli.image.io import load_image
from nstcli.image import io as images

# A run that stops right after the targets are computed: enough to check the output's shape.
NO_STEPS = [*FAST, "--steps", "0"]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def declared_png(path: Path, width: int, height: int) -> Path:
    """A PNG of a few dozen bytes whose header declares width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))
    return path


def truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bad_image(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """A broken input of the given kind and the exact message (or its start, ending in '(') it gets."""
    if kind == "missing":
        path = tmp_path / "nope.jpg"
        return path, f"Error: image {path} does not exist; check the path"
    if kind == "folder":
        path = tmp_path / "pictures.jpg"
        path.mkdir()
        return path, f"Error: image {path} is a folder, not an image file"
    if kind == "empty":
        path = tmp_path / "empty.jpg"
        path.write_bytes(b"")
        return path, f"Error: image {path} is empty (0 bytes); replace it with a real image"
    if kind == "text":
        path = tmp_path / "notes.jpg"
        path.write_text("these are notes, not a picture\n")
        return path, (f"Error: image {path} is not an image Pillow can read; give a PNG, JPEG, WebP, TIFF, "
                      "BMP or GIF file")
    if kind == "truncated-jpeg":
        path = truncated(make_image(tmp_path / "full.jpg", size=(64, 48)), tmp_path / "half.jpg")
        return path, f"Error: image {path} is damaged or truncated ("
    if kind == "truncated-png":
        path = truncated(make_image(tmp_path / "full.png", size=(64, 48)), tmp_path / "half.png")
        return path, f"Error: image {path} is damaged or truncated ("
    if kind == "bomb":  # beyond Pillow's own refusal (179 MP)
        path = declared_png(tmp_path / "bomb.png", 30000, 30000)
        return path, (f"Error: image {path} declares 900 MP, more than the 100 MP limit (a possible "
                      "decompression bomb); shrink it first")
    if kind == "bomb-120mp":  # between our limit and Pillow's: only our check stands in the way
        path = declared_png(tmp_path / "big.png", 12000, 10000)
        return path, (f"Error: image {path} declares 120 MP, more than the 100 MP limit (a possible "
                      "decompression bomb); shrink it first")
    if kind == "fifo":
        path = tmp_path / "pipe.png"
        os.mkfifo(path)
        return path, f"Error: image {path} is not a regular file; give an image file"
    raise AssertionError(kind)


BAD_KINDS = ["missing", "folder", "empty", "text", "truncated-jpeg", "truncated-png", "bomb", "bomb-120mp",
             pytest.param("fifo", marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs"))]


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_image_one_line_exit_1(runner, tmp_path, monkeypatch, kind, role):
    """It refuses each kind of unusable image with exit 1 and one line naming it, before loading VGG19."""
    no_network(monkeypatch)
    good = make_image(tmp_path / "good.png")
    bad, message = bad_image(kind, tmp_path)
    content, style = (bad, good) if role == "content" else (good, bad)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    line = error_line(result)
    if message.endswith("("):
        assert line.startswith(message) and line.endswith("); re-export or replace it")
    else:
        assert line == message
    assert not out.exists()


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_decompression_bomb_is_refused_without_allocating(tmp_path):
    """It refuses declared-huge images from the header, within 256 MB of memory headroom."""
    bombs = [declared_png(tmp_path / "a.png", 30000, 30000), declared_png(tmp_path / "b.png", 12000, 10000)]
    code = textwrap.dedent("""
        import resource, sys
        from nstcli.errors import ImageError
        from nstcli.image.io import load_image

        def address_space():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

        limit = address_space() + 256 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            bytearray(512 * 2**20)
            print("limit not enforced")
        except MemoryError:
            print("limit enforced")
        for path in sys.argv[1:]:
            try:
                load_image(path)
                print("decoded")
            except ImageError as exc:
                print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code, *map(str, bombs)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(api.__file__).parents[1])})
    assert done.returncode == 0, done.stderr
    # 120 MP of RGB is 360 MB: decoding it under this limit would fail with a different message.
    assert done.stdout.splitlines() == [
        "limit enforced",
        f"image {bombs[0]} declares 900 MP, more than the 100 MP limit (a possible decompression bomb); "
        "shrink it first",
        f"image {bombs[1]} declares 120 MP, more than the 100 MP limit (a possible decompression bomb); "
        "shrink it first",
    ]


def pixels(path) -> torch.Tensor:
    """(H, W, 3) uint8-valued floats of what load_image made of `path`."""
    return (load_image(path)[0].permute(1, 2, 0) * 255).round()


def as_tensor(image: Image.Image) -> torch.Tensor:
    """The raw bytes of an 8-bit PIL image as floats, flat."""
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).float()


def test_cmyk_jpeg_is_read_as_rgb(tmp_path):
    """It converts a CMYK JPEG to RGB close to the picture it was made from."""
    source = make_image(tmp_path / "rgb.png", size=(48, 32))
    Image.open(source).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    difference = (pixels(tmp_path / "cmyk.jpg") - pixels(source)).abs().mean()
    assert difference < 8  # JPEG loss, not a colour inversion (which would be ~100)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(tmp_path, transparent):
    """It expands a palette PNG to its colours, and its transparent entry to white."""
    rgb = Image.open(make_image(tmp_path / "rgb.png", size=(48, 32))).convert("RGB")
    palette = rgb.quantize(8)
    path = tmp_path / "palette.png"
    palette.save(path, **({"transparency": 0} if transparent else {}))
    expected = as_tensor(palette.convert("RGB")).view(32, 48, 3)
    index = as_tensor(palette).view(32, 48)
    if transparent:
        expected[index == 0] = 255.0
    assert (index == 0).any()
    assert torch.equal(pixels(path), expected)


def test_grayscale_png(tmp_path):
    """It repeats an 8-bit grayscale PNG's values in all three channels."""
    gray = Image.open(make_image(tmp_path / "rgb.png", size=(48, 32))).convert("L")
    gray.save(tmp_path / "gray.png")
    values = as_tensor(gray).view(32, 48)
    loaded = pixels(tmp_path / "gray.png")
    assert all(torch.equal(loaded[..., c], values) for c in range(3))


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    """It maps 16-bit values 0..65535 onto 0..255 instead of clipping everything above 255 to white."""
    image = Image.new("I;16", (4, 1))
    image.putdata([0, 256 * 64, 256 * 128, 65535])
    image.save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert pixels(tmp_path / "deep.png")[0, :, 0].tolist() == [0.0, 64.0, 128.0, 255.0]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_onto_white(tmp_path, mode):
    """It puts transparent pixels on white and mixes half-transparent ones with it."""
    colour = (40, 40, 40, 0) if mode == "LA" else (200, 40, 10, 0)
    image = Image.new("RGBA", (3, 1))
    image.putdata([colour[:3] + (0,), colour[:3] + (255,), colour[:3] + (128,)])
    image.convert(mode).save(tmp_path / "alpha.png")
    row = pixels(tmp_path / "alpha.png")[0]
    opaque = torch.tensor(colour[:3], dtype=torch.float32)
    assert row[0].tolist() == [255.0, 255.0, 255.0]
    assert torch.equal(row[1], opaque)
    assert (row[2] - (opaque * 128 + 255 * 127) / 255).abs().max() <= 1


def test_rgb_colour_key_transparency_becomes_white(tmp_path):
    """It treats an RGB PNG's transparent colour key like an alpha channel."""
    image = Image.new("RGB", (2, 1))
    image.putdata([(10, 20, 30), (90, 90, 90)])
    image.save(tmp_path / "keyed.png", transparency=(10, 20, 30))
    assert pixels(tmp_path / "keyed.png")[0].tolist() == [[255.0, 255.0, 255.0], [90.0, 90.0, 90.0]]


def exif_rotated(source: Path, path: Path) -> Path:
    """A copy of `source` as a JPEG whose EXIF says: rotate 90 degrees clockwise to display."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(source).convert("RGB").save(path, exif=exif, quality=95)
    return path


def test_exif_rotation_is_applied(runner, tmp_path, style):
    """It follows the EXIF orientation: a 48x32 photo tagged as rotated gives a tall output."""
    source = make_image(tmp_path / "landscape.png", size=(48, 32))
    rotated = exif_rotated(source, tmp_path / "rotated.jpg")
    assert Image.open(rotated).size == (48, 32)
    assert load_image(rotated).shape[-2:] == (48, 32)  # height 48, width 32
    plain, turned = tmp_path / "plain.png", tmp_path / "turned.png"
    for content, out in [(source, plain), (rotated, turned)]:
        result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *NO_STEPS])
        assert result.exit_code == 0, result.output
    assert Image.open(plain).size == (32, 21)
    assert Image.open(turned).size == (21, 32)


def test_animated_gif_uses_first_frame(tmp_path):
    """It reads the first frame of an animated GIF."""
    frames = [Image.new("RGB", (8, 6), colour) for colour in ("red", "blue", "lime")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(path), "n_frames", 1) == 3
    assert pixels(path).view(-1, 3).unique(dim=0).tolist() == [[255.0, 0.0, 0.0]]


def test_small_image_is_scaled_up(runner, tmp_path, style):
    """It scales an image smaller than --size up, so tiny inputs are not refused."""
    tiny = make_image(tmp_path / "tiny.png", size=(8, 4))
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(tiny), str(style), "-o", str(out), *NO_STEPS])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 16)


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("shape, size, hint", [
    ((2000, 20), 64, "use --size 1600 or more, or crop it"),
    ((20, 2000), 64, "use --size 1600 or more, or crop it"),
    ((1000, 100), 64, "use --size 160 or more, or crop it"),
    ((20000, 10), 64, "crop it to a less elongated shape"),  # 32000 px would exceed the size limit
])
def test_elongated_image_refused_with_size_that_works(runner, tmp_path, monkeypatch, role, shape, size, hint):
    """It refuses an image whose short side would fall below 16 px, naming a --size that works."""
    no_network(monkeypatch)
    thin = make_image(tmp_path / "thin.png", size=shape, seed=5)
    good = make_image(tmp_path / "good.png")
    content, style = (thin, good) if role == "content" else (good, thin)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST, "--size", str(size)])
    assert result.exit_code == 1
    long_side, short_side = max(shape), min(shape)
    scaled = max(1, round(short_side * size / long_side))
    width, height = (size, scaled) if shape[0] > shape[1] else (scaled, size)
    assert error_line(result) == (f"Error: image {thin} would be {width}x{height} px at --size {size}; the "
                                  f"layers used need at least 16 px on the short side: {hint}")
    assert not out.exists()


def test_elongated_image_works_at_the_suggested_size(runner, tmp_path, style):
    """It stylises a 1000x100 image at --size 160, the size the refusal at 64 suggested."""
    wide = make_image(tmp_path / "wide.png", size=(1000, 100), seed=5)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(wide), str(style), "-o", str(out), *NO_STEPS, "--size", "160"])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (160, 16)


def test_load_image_raises_only_image_error(tmp_path):
    """It raises ImageError, not a Pillow or OS exception, for a file that only looks like a PNG."""
    path = tmp_path / "fake.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageError, match=f"image {path} is"):
        load_image(path)


def test_pillow_warnings_name_the_file(runner, tmp_path, style):
    """It passes Pillow's warnings about a readable but odd file on to stderr, naming the file."""
    path = tmp_path / "odd.jpg"
    Image.new("RGB", (48, 32), "red").save(path, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00")
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(path), str(style), "-o", str(out), *NO_STEPS])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    assert f"Warning: image {path}: Corrupt EXIF data." in result.stderr


@pytest.mark.parametrize("raised, message", [
    (PermissionError(13, "Permission denied"), "cannot be read (permission denied)"),
    (MemoryError(), "is too large to decode in the memory available; shrink it first"),
])
def test_unreadable_or_too_big_to_decode(runner, tmp_path, style, monkeypatch, raised, message):
    """It names an image it may not read, or cannot decode in the memory left, with exit 1."""
    from nstcli.image import io as images

    content = make_image(tmp_path / "photo.png")

    def fails(*args, **kwargs):
        raise raised

    monkeypatch.setattr(images.Image, "open", fails)
    out = tmp_path / "out.png"
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: image {content} {message}"
    assert not out.exists()


EPS = textwrap.dedent("""\
    %!PS-Adobe-3.0 EPSF-3.0
    %%BoundingBox: 0 0 32 32
    %%EndComments
    newpath 0 0 moveto 32 32 lineto stroke
    showpage
    %%EOF
    """).encode()


def test_postscript_named_jpg_is_not_decoded(tmp_path, monkeypatch):
    """It refuses a PostScript file named .jpg without asking Ghostscript (or any program) to read it."""
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("program started"))
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: started.append(a) or pytest.fail("program"))
    path = tmp_path / "photo.jpg"
    path.write_bytes(EPS)
    with pytest.raises(ImageError) as info:
        images.open_image(path)
    assert str(info.value) == (f"image {path} is not an image Pillow can read; give a PNG, JPEG, WebP, TIFF, "
                               "BMP or GIF file")
    assert started == []


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("TIFF", ".tif"),
                                         ("BMP", ".bmp"), ("GIF", ".gif")])
def test_documented_formats_still_open(tmp_path, fmt, suffix):
    """It still opens every documented input format."""
    from PIL import Image

    path = tmp_path / f"x{suffix}"
    Image.open(make_image(tmp_path / "src.png")).save(path, format=fmt)
    assert images.open_image(path).size == (48, 32)


def test_a_ppm_image_is_refused(tmp_path):
    """It refuses a format Pillow reads but the README does not list (PPM)."""
    from PIL import Image

    path = tmp_path / "x.png"
    Image.open(make_image(tmp_path / "src.png")).save(path, format="PPM")
    with pytest.raises(ImageError, match="is not an image Pillow can read"):
        images.open_image(path)


def _deny_reading(monkeypatch, denied: Path):
    """Make `denied` unreadable the way os.access reports it (tests run as root, which reads anything)."""
    real = os.access

    def access(path, how, *args, **kwargs):
        if how & os.R_OK and os.path.abspath(path) == str(denied):
            return False
        return real(path, how, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_unreadable_image_is_a_run_failure(runner, content, style, tmp_path, monkeypatch):
    """It reports an unreadable image in its own words with exit 1, not click's usage error."""
    _deny_reading(monkeypatch, style)
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert result.exit_code == 1
    assert error_line(result) == f"Error: image {style} cannot be read (permission denied)"


def test_unreadable_image_fails_only_its_batch_item(runner, content, style, tmp_path, monkeypatch):
    """It fails only the unreadable input's item in nst batch; the other item is written."""
    other = make_image(tmp_path / "other.png", seed=4)
    _deny_reading(monkeypatch, other)
    out = tmp_path / "out"
    result = runner.invoke(nst, ["batch", str(content), str(other), "--style", str(style), "-o", str(out), *FAST])
    assert result.exit_code == 1
    assert (out / "content__style.png").is_file() and not (out / "other__style.png").exists()
    assert f"failed: {other} with style {style}: image {other} cannot be read (permission denied)" in result.stderr
    assert "batch: 1 done, 0 skipped, 1 failed of 2 items" in result.stderr
