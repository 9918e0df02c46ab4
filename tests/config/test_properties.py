"""Property tests: whatever a config file or an image file holds, the only failure is our own error."""

import io
import json
import math
import os

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from nstcli.config.fields import FIELDS, Config, load_config
from nstcli.config.specs import OPTIMIZERS
from nstcli.errors import ConfigError, ImageError
from nstcli.image.io import load_image
from nstcli.config.layers import LAYER_NAMES

from helpers import make_image

# Moderate example counts: the suite shares two CPU cores (NST_PROPERTY_EXAMPLES=5000 searches
# harder). tmp_path is function-scoped, but every example overwrites the same file in it.
PROPERTY = settings(max_examples=int(os.environ.get("NST_PROPERTY_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = st.one_of(
    st.sampled_from(sorted(FIELDS)),
    st.sampled_from(sorted(name.replace("_", "-") for name in FIELDS)),
    st.text(max_size=20),
    st.integers(), st.booleans(), st.none(), st.floats(),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # overflows float(); 5000 digits: examples below
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(LAYER_NAMES),
    st.sampled_from(OPTIMIZERS + ("auto", "cpu", "random", "imagenet", "content", "noise", "max", "avg")),
    st.lists(st.sampled_from(LAYER_NAMES), max_size=6).map(",".join),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(lambda v: ",".join(map(str, v))),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
MAPPINGS = st.dictionaries(KEYS, VALUES, max_size=8)


def loads_or_config_error(load) -> None:
    """Call load(); it must return a usable Config or raise ConfigError, nothing else."""
    try:
        config = load()
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(config, Config)
    repr(config)
    json.dumps({name: getattr(config, name) for name in FIELDS})  # what --json and logs may print
    assert all(math.isfinite(v) for v in (config.content_weight, config.style_weight, config.tv_weight))


@PROPERTY
@given(MAPPINGS)
@example({"steps": 10**5000})
@example({"style_layers": [[["relu1_1"]]]})
def test_random_options_raise_only_config_error(mapping):
    """It turns any mapping of options into a Config or a one-line ConfigError."""
    loads_or_config_error(lambda: load_config(None, mapping))


@PROPERTY
@given(MAPPINGS)
def test_random_yaml_mappings_raise_only_config_error(tmp_path, mapping):
    """It turns any YAML mapping in a config file into a Config or a one-line ConfigError."""
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(mapping))
    loads_or_config_error(lambda: load_config(path))


@PROPERTY
@given(st.one_of(
    st.text(max_size=300),
    st.text(alphabet="[]{}:,-?&*!|>'\"%@` \n\t#.0123456789abcdeflnrsutx_+", max_size=300),
))
@example("steps: 2020-13-45\n")
@example("steps: " + "[" * 5000)
@example("steps: " + "9" * 5000)
@example("steps: !!timestamp x\n")
@example("steps: &x [*x]\n")
def test_random_yaml_text_raises_only_config_error(tmp_path, text):
    """It turns any text in a config file into a Config or a one-line ConfigError."""
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_config_error(lambda: load_config(path))


@PROPERTY
@given(st.binary(max_size=300))
def test_random_config_bytes_raise_only_config_error(tmp_path, data):
    """It turns any bytes in a config file into a Config or a one-line ConfigError."""
    path = tmp_path / "random.yaml"
    path.write_bytes(data)
    loads_or_config_error(lambda: load_config(path))


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (12, 8), "orange").save(buffer, format=fmt)
    return buffer.getvalue()


# Real files in several formats: their first bytes get decoders past format detection, into the
# header and pixel parsers, where random data does the most damage.
REAL_FILES = [_encoded("PNG"), _encoded("PNG", "RGBA"), _encoded("PNG", "P"), _encoded("JPEG"),
              _encoded("GIF", "P"), _encoded("BMP"), _encoded("TIFF"), _encoded("WEBP"), _encoded("ICO")]
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
              b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"\x00\x00\x01\x00"]


@st.composite
def damaged_files(draw) -> bytes:
    """A real image file cut at a random point, with random bytes overwritten and appended."""
    data = bytearray(draw(st.sampled_from(REAL_FILES)))
    data = data[: draw(st.integers(min_value=1, max_value=len(data)))]
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        data[draw(st.integers(min_value=0, max_value=len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data) + draw(st.binary(max_size=64))


IMAGE_BYTES = st.one_of(
    st.binary(max_size=400),
    st.tuples(st.sampled_from(SIGNATURES), st.binary(max_size=400)).map(lambda parts: parts[0] + parts[1]),
    damaged_files(),
)


@PROPERTY
@given(IMAGE_BYTES, st.sampled_from([None, 16, 37]))
def test_random_image_bytes_raise_only_image_error(tmp_path, data, size):
    """It turns any file into an RGB tensor in [0, 1] or a one-line ImageError."""
    path = tmp_path / "random.img"
    path.write_bytes(data)
    try:
        tensor = load_image(path, size)
    except ImageError as exc:
        assert str(exc).startswith(f"image {path} ") and "\n" not in str(exc)
        return
    assert tensor.dim() == 4 and tensor.shape[:2] == (1, 3)
    if size is not None:
        assert max(tensor.shape[-2:]) == size
    assert 0 <= float(tensor.min()) and float(tensor.max()) <= 1


def test_real_files_used_as_seeds_load(tmp_path):
    """It loads every undamaged seed file in a documented format, so the property above starts from valid images."""
    for index, data in enumerate(REAL_FILES[:-1]):
        path = tmp_path / f"seed{index}"
        path.write_bytes(data)
        assert tuple(load_image(path).shape) == (1, 3, 8, 12)
    (tmp_path / "icon.ico").write_bytes(REAL_FILES[-1])  # Pillow reads ICO, but it is not a documented input
    with pytest.raises(ImageError, match="is not an image Pillow can read"):
        load_image(tmp_path / "icon.ico")
    assert load_image(make_image(tmp_path / "x.png")).shape == (1, 3, 32, 48)

