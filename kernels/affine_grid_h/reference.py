"""float64 reference: AffineGrid (ONNX opset 20): the sampling grid of affine matrices theta for GridSample.

theta (N, 2, 3) with size = [N, C, H, W] gives (N, H, W, 2); theta (N, 3, 4) with [N, C, D, H, W] gives
(N, D, H, W, 3). The last axis holds x (width) first.
"""

import numpy as np

from kernelkit.library.attrs import attr_bool, attr_ints


def base_coordinates(size: int, align_corners: bool) -> np.ndarray:
    if align_corners:
        return np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
    return (np.arange(size) * 2.0 + 1.0) / size - 1.0


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    theta = np.asarray(inputs[0], dtype=np.float64)
    size = [int(s) for s in np.asarray(inputs[1]).ravel()] if len(inputs) > 1 else attr_ints(attrs, "size")
    align = attr_bool(attrs, "align_corners", False)
    spatial = size[2:]
    axes = [base_coordinates(s, align) for s in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")  # one array per spatial axis, outer axis first
    homogeneous = np.stack(list(mesh[::-1]) + [np.ones(spatial)], axis=-1)  # x first, then y (z), then 1
    return np.einsum("...k,njk->n...j", homogeneous, theta)
