"""float64 reference: DepthToSpace (OpenVINO opset1) on NCHW; mode blocks_first (ONNX DCR) or depth_first (CRD)."""

import numpy as np

from kernelkit.library.attrs import attr_int, attr_str

MODES = {"blocks_first": "blocks_first", "dcr": "blocks_first", "depth_first": "depth_first", "crd": "depth_first"}


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    bs = attr_int(attrs, "block_size")
    mode = attr_str(attrs, "mode", "blocks_first", MODES)
    n, c, h, w = x.shape
    depth = c // (bs * bs)
    if mode == "blocks_first":
        y = x.reshape(n, bs, bs, depth, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, depth, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, depth, h * bs, w * bs)
