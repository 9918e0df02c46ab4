"""A trained network as ONNX, for onnxruntime, browsers (onnxruntime-web) and mobile runtimes.

The graph takes `input`, float32 (1, 3, H, W) RGB in [0, 1] with H and W free (multiples of 4 run
without padding; others are padded inside as in PyTorch), and gives `output`, the same shape,
clamped to [0, 1]. Opset 17: reflection padding, instance normalisation and nearest resizing are
all standard operators there.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch

from nstcli.errors import ConfigError, ModelError, first_line
from nstcli.fast import modelfile
from nstcli.fast.network import Clamped
from nstcli.image.io import atomic_write

OPSET = 17


def check_output(output: str | os.PathLike) -> Path:
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise ConfigError(f"-o {output}: the export is an ONNX file; give a name ending in .onnx")
    if output.is_dir():
        raise ConfigError(f"-o {output} is a folder; give a file name such as {output / 'model.onnx'}")
    return output


def export(model: str | os.PathLike, output: str | os.PathLike, sample_side: int = 64) -> Path:
    """Write `model` as ONNX to `output` (atomically)."""
    output = check_output(output)
    try:
        import onnx  # noqa: F401  - torch's exporter needs it
    except ImportError:
        raise ConfigError("nst export needs the onnx package: pip install 'nstcli[export]'") from None
    net, info = modelfile.load(model, "cpu")
    wrapped = Clamped(net).eval()
    sample = torch.rand(1, 3, sample_side, sample_side, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (sample,), buffer, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}},
                              opset_version=OPSET, dynamo=False)
    except Exception as exc:
        raise ModelError(f"exporting {model} to ONNX failed ({first_line(exc, 160)})") from exc
    data = _with_metadata(buffer.getvalue(), info)
    output.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(output, lambda tmp: Path(tmp).write_bytes(data),
                        error=lambda exc: ModelError(f"cannot write {output} ({exc.strerror or exc})"))


def _with_metadata(data: bytes, info: modelfile.ModelInfo) -> bytes:
    """The model's style name and architecture as ONNX metadata, so the file says what it is."""
    import json

    import onnx

    proto = onnx.load_from_string(data)
    for key, value in (("nstcli", json.dumps(info.header(), sort_keys=True)), ("style", info.style)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "nstcli"
    return proto.SerializeToString()
