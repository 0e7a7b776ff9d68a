"""float64 reference: GroupNormalization (OpenVINO opset12, ONNX opset 21): per-channel scale and bias."""

import numpy as np

from kernelkit.library.attrs import attr_float, attr_int


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    groups = attr_int(attrs, "num_groups")
    eps = attr_float(attrs, "epsilon", 1e-5)
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mean = grouped.mean(axis=2, keepdims=True)
    var = ((grouped - mean) ** 2).mean(axis=2, keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + eps)).reshape(x.shape)
    per_channel = (1, c) + (1,) * (x.ndim - 2)
    scale = np.asarray(inputs[1], dtype=np.float64).reshape(per_channel)
    bias = np.asarray(inputs[2], dtype=np.float64).reshape(per_channel)
    return y * scale + bias
