"""float64 reference: Interpolate (OpenVINO opset11) / ONNX Resize in cubic mode, separable over the axes.

Attributes: sizes or scales (one per axis in `axes`, default all axes), axes, coordinate_transformation_mode
(half_pixel, pytorch_half_pixel, asymmetric, tf_half_pixel_for_nn, align_corners), cube_coeff (-0.75),
exclude_outside (ONNX; 0 clamps taps to the edge). Antialiasing is not supported.
An axis whose size does not change is copied, as OpenVINO does (ONNX would shift it by half a pixel under
tf_half_pixel_for_nn).
"""

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.library.attrs import attr_bool, attr_float, attr_floats, attr_ints, attr_str, normalize_axis
from kernelkit.library.interp import COORDINATE_MODES, cubic_matrix


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    if attr_bool(attrs, "antialias", False):
        raise KernelkitError("cubic Interpolate with antialias is not supported", where="attrs.antialias",
                             hint="set antialias = 0")
    axes = attr_ints(attrs, "axes") or list(range(x.ndim))
    axes = [normalize_axis(a, x.ndim, "axes") for a in axes]
    sizes = attr_ints(attrs, "sizes")
    scales = attr_floats(attrs, "scales")
    if sizes is None and scales is None:
        raise KernelkitError("Interpolate needs sizes or scales", where="attrs", hint="add sizes = [...] or scales = [...]")
    mode = attr_str(attrs, "coordinate_transformation_mode", "half_pixel", COORDINATE_MODES)
    a = attr_float(attrs, "cube_coeff", -0.75)
    exclude = attr_bool(attrs, "exclude_outside", False)
    y = x
    for i, axis in enumerate(axes):
        in_size = x.shape[axis]
        out_size = sizes[i] if sizes is not None else int(np.floor(in_size * scales[i] + 1e-9))
        scale = scales[i] if scales is not None else out_size / in_size
        if out_size == in_size and scale == 1.0:
            continue
        matrix = cubic_matrix(in_size, out_size, scale, mode, a, exclude)
        y = np.moveaxis(np.tensordot(matrix, np.moveaxis(y, axis, 0), axes=(1, 0)), 0, axis)
    return y
