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

from nstcli import outputs
from nstcli.extras import require
from nstcli.errors import ModelError, first_line
from nstcli.fast import modelfile
from nstcli.fast.network import Clamped
from nstcli.writes import write_file

OPSET = 17


def check_output(output: str | os.PathLike, model: str | os.PathLike | None = None) -> Path:
    """-o checked as every command checks it (outputs.py); the model it reads is one of its inputs."""
    return outputs.check_output(output, (".onnx",), "model.onnx", inputs=[model] if model is not None else [])


def export(model: str | os.PathLike, output: str | os.PathLike, sample_side: int = 64) -> Path:
    """Write `model` as ONNX to `output` (atomically)."""
    outputs.check_name(output, (".onnx",), "model.onnx")
    require("onnx", "export", "nst export", "the onnx package")  # torch's exporter needs it
    modelfile.read_header(model)  # a wrong file is one line, before the output's folder is made
    output = check_output(output, model)
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
    return write_file(output, data)


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
