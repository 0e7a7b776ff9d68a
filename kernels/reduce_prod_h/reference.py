"""ReduceProd reference in float64: the axes are input 1, keep_dims a layer attribute."""

import numpy as np


def reference(inputs, attrs):
    data = np.asarray(inputs[0], dtype=np.float64)
    axes = tuple(int(a) % data.ndim for a in np.asarray(inputs[1]).reshape(-1))
    keep = str(attrs.get("keep_dims", False)).strip().lower() in ("1", "true")
    return np.prod(data, axis=axes, keepdims=keep)
