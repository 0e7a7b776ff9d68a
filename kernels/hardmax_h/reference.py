"""float64 reference: Hardmax (1 at the first maximum along `axis`, 0 elsewhere)."""

import numpy as np

from kernelkit.library.attrs import attr_int, normalize_axis


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    axis = normalize_axis(attr_int(attrs, "axis", -1), x.ndim)
    first_max = np.expand_dims(np.argmax(x, axis=axis), axis)
    out = np.zeros_like(x)
    np.put_along_axis(out, first_max, 1.0, axis=axis)
    return out
