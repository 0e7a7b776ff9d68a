"""float64 reference: Trilu (keep the upper or lower triangle of the last two axes, offset by diagonal k)."""

import numpy as np

from kernelkit.library.attrs import attr_bool, attr_int


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0])
    # ONNX passes k as an optional second input; the custom layer carries it as attribute k.
    k = int(np.asarray(inputs[1]).reshape(())) if len(inputs) > 1 else attr_int(attrs, "k", 0)
    upper = attr_bool(attrs, "upper", True)
    return np.triu(x, k) if upper else np.tril(x, k)
