"""float64 reference: SpaceToDepth (OpenVINO opset1) on NCHW; mode blocks_first (ONNX default/DCR) or depth_first."""

import numpy as np

from kernelkit.library.attrs import attr_int, attr_str

MODES = {"blocks_first": "blocks_first", "dcr": "blocks_first", "depth_first": "depth_first", "crd": "depth_first"}


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    bs = attr_int(attrs, "block_size")
    mode = attr_str(attrs, "mode", "blocks_first", MODES)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // bs, bs, w // bs, bs)
    if mode == "blocks_first":
        y = y.transpose(0, 3, 5, 1, 2, 4)
    else:
        y = y.transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * bs * bs, h // bs, w // bs)
