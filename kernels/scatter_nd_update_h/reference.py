"""float64 reference: ScatterNDUpdate (OpenVINO opset15 / ONNX ScatterND), with optional reduction.

Updates are applied in index order, so with duplicate indices and reduction "none" the last one wins.
"""

import numpy as np

from kernelkit.library.attrs import attr_str

REDUCTIONS = {"none": "none", "sum": "sum", "add": "sum", "sub": "sub", "prod": "prod", "mul": "prod",
              "min": "min", "max": "max"}


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    out = np.array(inputs[0], dtype=np.float64)
    indices = np.asarray(inputs[1]).astype(np.int64)
    updates = np.asarray(inputs[2], dtype=np.float64)
    reduction = attr_str(attrs, "reduction", "none", REDUCTIONS)
    for position in np.ndindex(indices.shape[:-1]):
        target = tuple(indices[position])
        value = updates[position]
        if reduction == "none":
            out[target] = value
        elif reduction == "sum":
            out[target] = out[target] + value
        elif reduction == "sub":
            out[target] = out[target] - value
        elif reduction == "prod":
            out[target] = out[target] * value
        elif reduction == "min":
            out[target] = np.minimum(out[target], value)
        else:
            out[target] = np.maximum(out[target], value)
    return out
