"""float64 reference: LayerNormalization (ONNX opset 17): normalise over axes [axis, rank), then scale and bias."""

import numpy as np

from kernelkit.library.attrs import attr_float, attr_int, normalize_axis


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    axis = normalize_axis(attr_int(attrs, "axis", -1), x.ndim)
    eps = attr_float(attrs, "epsilon", 1e-5)
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    y = y * np.asarray(inputs[1], dtype=np.float64)
    if len(inputs) > 2:
        y = y + np.asarray(inputs[2], dtype=np.float64)
    return y
