"""MatMul with constant weights over many rows -> a 1x1 Convolution (MYRIAD 2021.4).

The plugin makes a MatMul with a constant 2-D weight a FullyConnected layer and runs it one row at a time:
a `[1, 56, 56, 96] x [96, 384]` MatMul (a ConvNeXt or Swin MLP) becomes 3,136 hardware stages and 3,137 copies,
and the compiler's tiling search over them takes minutes per layer (measured: 132 s for that one layer;
Swin-T's patched model did not finish within an hour). The same product as a 1x1 Convolution over the rows is
one hardware convolution: 15 stages, 0.1 s. The rows become the spatial grid, the contracted axis the channels:

    x [..., P, Q, K] -> Reshape [1, P, Q, K] -> Transpose (NHWC -> NCHW) -> Convolution W [N, K, 1, 1]
      -> Transpose (NCHW -> NHWC) -> Reshape [..., P, Q, N]

The result is the same sum of products (each output element is one dot product of K terms).
"""

from __future__ import annotations

import math

import numpy as np

from kernelkit.model.passes.base import PatchContext, describe
from kernelkit.ir.graph import add_const, const_value, input_of, op, replace

NAME = "fc_as_conv"


def _rows_grid(dims: list[int]) -> tuple[int, int] | None:
    """The [P, Q] grid of rows of an activation [..., K]: Q its second-last dimension, P the rest."""
    if len(dims) < 2 or any(d <= 0 for d in dims):
        return None
    return math.prod(dims[:-2]), dims[-2]


def apply(ctx: PatchContext, skip=()) -> None:
    from kernelkit.kernel.bindings.myriad_select import network_batch

    model = ctx.model
    if network_batch([p.outputs[0].dims for p in model.parameters()]):
        return        # compiled one sample at a time: the plugin refuses the fixed Reshapes there (measured)
    for layer in list(model.topological_order()):
        if layer.type != "MatMul" or len(layer.inputs) != 2 or layer.version != "opset1" or layer.name in skip:
            continue
        if str(layer.attrs.get("transpose_a", "false")).lower() in ("true", "1"):
            continue
        weights = const_value(model, input_of(model, layer, 1))
        if weights is None or np.ndim(weights) != 2 or np.asarray(weights).dtype.kind != "f":
            continue
        activation = input_of(model, layer, 0)
        dims = activation.dims
        grid = _rows_grid(dims)
        if grid is None or grid[0] * grid[1] <= 1 or len(dims) > 4 or activation.precision not in ("FP32", "FP16"):
            continue
        w = np.asarray(weights)
        if str(layer.attrs.get("transpose_b", "false")).lower() not in ("true", "1"):
            w = w.T                                            # [N, K]
        n, k = w.shape
        if k != dims[-1]:
            continue
        before = describe(layer)
        name = layer.name
        p, q = grid
        grid_4d = op(model, "Reshape", f"{name}/rows", [activation, add_const(model, np.array([1, p, q, k]),
                                                                               f"{name}/rows_shape")],
                     {"special_zero": "false"})
        nchw = op(model, "Transpose", f"{name}/to_nchw", [grid_4d, add_const(model, np.array([0, 3, 1, 2]),
                                                                             f"{name}/to_nchw_order")])
        kernel = add_const(model, w.reshape(n, k, 1, 1).astype(weights.dtype), f"{name}/weights_1x1")
        conv = op(model, "Convolution", f"{name}/conv1x1", [nchw, kernel],
                  {"strides": "1,1", "dilations": "1,1", "pads_begin": "0,0", "pads_end": "0,0",
                   "auto_pad": "explicit"})
        nhwc = op(model, "Transpose", f"{name}/to_nhwc", [conv, add_const(model, np.array([0, 2, 3, 1]),
                                                                          f"{name}/to_nhwc_order")])
        result = op(model, "Reshape", f"{name}/as_matmul", [nhwc, add_const(model, np.array(dims[:-1] + [n]),
                                                                              f"{name}/out_shape")],
                    {"special_zero": "false"})
        replace(model, layer, result)
        ctx.record(NAME, name, before, f"1x1 Convolution over {p}x{q} rows ({k} -> {n} channels): one "
                   f"hardware stage instead of {p * q} FullyConnected rows")
