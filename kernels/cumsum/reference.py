"""CumSum-3 reference in float64: the axis is input 1, exclusive/reverse are layer attributes."""

import numpy as np


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true")


def reference(inputs, attrs):
    data = np.asarray(inputs[0], dtype=np.float64)
    axis = int(np.asarray(inputs[1]).reshape(-1)[0])
    axis = axis + data.ndim if axis < 0 else axis
    if _flag(attrs.get("reverse", False)):
        data = np.flip(data, axis)
    out = np.cumsum(data, axis=axis)
    if _flag(attrs.get("exclusive", False)):
        out = out - data
    if _flag(attrs.get("reverse", False)):
        out = np.flip(out, axis)
    return out
