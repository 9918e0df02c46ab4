"""Time to apply a fast style network (nst apply's computation) at 512 px and 1080p, per width.

usage: python benchmarks/fast/fast_apply.py [--widths 8,16,32] [--repeats 5] [--threads N] [--sizes 384x512,1080x1920]

For each network width (untrained weights: the time does not depend on their values) and each size,
the median of `--repeats` timed passes after one warm-up, of `nstcli.fast.apply.stylize_image`: the
network's forward, clamp, and moving the result back, in fp32 and in bf16 autocast (what
`--precision auto` chooses is printed too). Also the ONNX export run in onnxruntime at 512 px when
it is installed. Prints the CPU and a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from nstcli.runtime import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()

import torch  # noqa: E402

from nstcli.fast import modelfile  # noqa: E402
from nstcli.fast.apply import stylize_image  # noqa: E402
from nstcli.fast.network import Architecture, TransformNet  # noqa: E402
from nstcli.config.specs import FAST_PRECISIONS  # noqa: E402
from nstcli.runtime import resolve_precision  # noqa: E402

SIZES = {"512 px (512x384)": (384, 512), "1080p (1920x1080)": (1080, 1920)}


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(function, repeats: int) -> float:
    function()  # warm-up: oneDNN picks its kernels on the first call of a shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", default="8,16,32")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--sizes", default=None, help="HxW,... instead of 512 px and 1080p")
    args = parser.parse_args()
    sizes = SIZES
    if args.sizes:
        sizes = {f"{h}x{w}": (int(h), int(w)) for h, w in (item.split("x") for item in args.sizes.split(","))}
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"--precision auto -> {resolve_precision('auto', torch.device('cpu'), FAST_PRECISIONS)}")
    rows = []
    for width in (int(w) for w in args.widths.split(",")):
        torch.manual_seed(0)
        net = TransformNet(Architecture(width, args.blocks)).eval().requires_grad_(False)
        for index, (label, (height, width_px)) in enumerate(sizes.items()):
            image = torch.rand(1, 3, height, width_px)
            fp32 = timed(lambda: stylize_image(net, image, tile=0), args.repeats)
            bf16 = None if args.no_bf16 else timed(lambda: stylize_image(net, image, tile=0, precision="bf16"),
                                                   max(1, args.repeats // 2))
            onnx = None
            if index == 0:
                onnx = onnx_time(net, image, args.repeats)
            rows.append((width, args.blocks, label, fp32, bf16, onnx))
            print(f"width {width}: {label}: fp32 {fp32:.3f} s" + (f", bf16 {bf16:.3f} s" if bf16 else "")
                  + (f", onnxruntime {onnx:.3f} s" if onnx else ""), flush=True)
    print("\n| width | blocks | size | fp32 s | bf16 s | bf16/fp32 | onnxruntime s |")
    print("|---|---|---|---|---|---|---|")
    for width, blocks, label, fp32, bf16, onnx in rows:
        print(f"| {width} | {blocks} | {label} | {fp32:.3f} | {'' if bf16 is None else f'{bf16:.3f}'} | "
              f"{'' if bf16 is None else f'{bf16 / fp32:.2f}'} | {'' if onnx is None else f'{onnx:.3f}'} |")


def onnx_time(net: TransformNet, image: torch.Tensor, repeats: int) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from nstcli.fast.export import export

    with tempfile.TemporaryDirectory() as folder:
        model = modelfile.save(Path(folder) / "m.safetensors", net.state_dict(),
                               modelfile.ModelInfo(net.architecture, "bench"))
        onnx_path = export(model, Path(folder) / "m.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        array = image.numpy()
        return timed(lambda: session.run(None, {"input": array}), repeats)


if __name__ == "__main__":
    main()
