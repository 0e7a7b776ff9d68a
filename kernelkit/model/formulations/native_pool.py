"""Native formulation of the pooling the MYRIAD 2021.4 plugin cannot take (dilations, AvgPool-16's
rounding, 3-D average pooling), as one pass per spatial axis.

Max and average pooling are separable: the max over a box is the max over each axis in turn, and the
average's divisor (the taps inside the input, or inside input plus padding) is a product of one count per
axis. A pass gathers each tap's input position for every output position (a constant index vector,
clamped into range), masks the taps that fall outside (-65504 for max, 0 for average), combines them
(Maximum or a tree of Adds) and, for average, multiplies by the axis's constant 1/count. The output size
is the layer's own, so every rounding mode (floor, ceil, ceil_torch) comes out as the op defines it.
Each pass works on a rank-3 view [before, axis, after].

An average pool that excludes its padding, whose only fault is that padding (the plugin compiles it but may
run it as a pool dividing by the whole kernel: limits.toml), takes a shorter exact form: the same pool
counting the padding (exclude-pad=false, which the plugin computes as the model does) times a constant map
of kernel area / taps inside the input per output position.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, input_of, pool_window_pads, unused

LOWEST_FP16 = -65504.0
MAX_TAPS = 16          # per axis; a larger kernel costs more layers than it is worth


def _ints(layer, name: str, rank: int, default: int) -> list[int]:
    text = layer.attrs.get(name, "")
    values = [int(v) for v in text.split(",") if v.strip()]
    return values or [default] * rank


def _positions(out_len: int, stride: int, dilation: int, pad: int, tap: int) -> np.ndarray:
    return np.arange(out_len) * stride - pad + tap * dilation


def _pass(c: Composer, x: Out, axis: int, out_len: int, kernel: int, stride: int, dilation: int,
          pad_begin: int, pad_end: int, average: bool, exclude_pad: bool, index: Out | None = None):
    """One axis of the pooling; with `index` (the flat input index of every element, max pooling only)
    also the index of the maximum, the first one in scan order on ties. Returns (result, index)."""
    dims = list(x.dims)
    n = dims[axis]
    before, after = int(np.prod(dims[:axis])), int(np.prod(dims[axis + 1:]))
    view = c.reshape(x, [before, n, after])
    index_view = c.reshape(index, [before, n, after]) if index is not None else None
    taps, counts = [], np.zeros(out_len)
    for tap in range(kernel):
        where = _positions(out_len, stride, dilation, pad_begin, tap)
        inside = (where >= 0) & (where < n)
        in_padded = (where >= -pad_begin) & (where < n + pad_end)
        counts += inside if exclude_pad else in_padded
        if not inside.any():
            continue
        positions = np.clip(where, 0, n - 1).astype(np.int32)
        picked = c.gather(view, positions, 1)
        if not inside.all():
            mask = c.greater(c.const(inside.astype(np.float32).reshape(1, out_len, 1), np.float32), 0.5)
            picked = c.select(mask, picked, LOWEST_FP16 if not average else 0.0)
        taps.append((picked, c.gather(index_view, positions, 1) if index_view is not None else None))
    if not taps:
        raise Refuse("a pooling window with no input inside")
    dims[axis] = out_len
    if index is not None:
        # In scan order, a later tap replaces the best only when strictly greater: the first maximum wins.
        best, best_index = taps[0]
        for value, where in taps[1:]:
            take = c.greater(value, best)
            best, best_index = c.select(take, value, best), c.select(take, where, best_index)
        return c.reshape(best, dims), c.reshape(best_index, dims)
    values = [t[0] for t in taps]
    while len(values) > 1:
        combine = c.add if average else c.maximum
        values = [combine(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    result = values[0]
    if average:
        result = c.mul(result, c.const((1 / np.maximum(counts, 1)).reshape(1, out_len, 1)))
    return c.reshape(result, dims), None


def _padding_counted(c: Composer, layer, x: Out) -> Out | None:
    """An average pool excluding its padding, 1-D or 2-D, as AvgPool-1 counting it (over the padding the
    layer's output size implies, whatever its rounding) times kernel area / valid taps; None when the layer
    needs more than that (dilations, a window with no input inside) or has no padding."""
    out_dims = layer.outputs[0].dims
    spatial = len(x.dims) - 2
    pads = pool_window_pads(layer, x.dims, out_dims)
    if spatial not in (1, 2) or pads is None:
        return None
    if all(begin <= 0 and end <= 0 for begin, end in pads):
        return None                     # nothing to exclude: the layer is not this form's to take
    if any(d != 1 for d in _ints(layer, "dilations", spatial, 1)):
        return None
    kernel, strides = _ints(layer, "kernel", spatial, 1), _ints(layer, "strides", spatial, 1)
    factors = []
    for i, (begin, end) in enumerate(pads):
        begin, end = max(begin, 0), max(end, 0)
        n, length = x.dims[2 + i], out_dims[2 + i]
        if (n + begin + end - kernel[i]) // strides[i] + 1 != length:
            return None                 # the floor-rounded pool over these pads would not give this size
        starts = np.arange(length) * strides[i] - begin
        inside = np.minimum(starts + kernel[i], n) - np.maximum(starts, 0)
        if (inside <= 0).any():
            return None
        factors.append(kernel[i] / inside)
    correction = factors[0] if spatial == 1 else np.outer(factors[0], factors[1])
    begins = ",".join(str(max(b, 0)) for b, _ in pads)
    ends = ",".join(str(max(e, 0)) for _, e in pads)
    counted = c.op("AvgPool", [x], {"kernel": ",".join(map(str, kernel)), "strides": ",".join(map(str, strides)),
                                    "pads_begin": begins, "pads_end": ends, "exclude-pad": "false",
                                    "rounding_type": "floor", "auto_pad": "explicit"},
                   tag="padding_counted", outputs=(x.precision, list(out_dims)))
    return c.mul(counted, c.const(correction.reshape([1, 1] + list(out_dims[2:]))), tag="padding_excluded")


@formulation("maxpool", text="per spatial axis: Gather of each tap (constant indices), Maximum (indices by "
             "Greater/Select in scan order)", multi_output=True)
@formulation("avgpool", text="per spatial axis: Gather of each tap (constant indices), Adds, times the constant "
             "1/count; excluding only its padding: AvgPool counting it times a constant map", multi_output=True)
def pool(model, layer):
    """MaxPool / AvgPool of any opset, 1-D to 3-D, as one gather-and-combine pass per spatial axis; MaxPool-8's
    indices (flat over the dimensions from `axis` on) when they are used."""
    x = input_of(model, layer, 0)
    if x.precision not in FLOAT_PRECISIONS:
        raise Refuse(f"input is {x.precision}; the formulation is for floating point")
    average = layer.type.lower() == "avgpool"
    with_index = not average and len(layer.outputs) > 1 and not unused(model, layer, 1)
    spatial = len(x.dims) - 2
    if spatial < 1 or any(d <= 0 for d in x.dims):
        raise Refuse("a dynamic or zero dimension, or no spatial axis")
    kernel = _ints(layer, "kernel", spatial, 1)
    strides = _ints(layer, "strides", spatial, 1)
    dilations = _ints(layer, "dilations", spatial, 1)
    pads_begin = _ints(layer, "pads_begin", spatial, 0)
    pads_end = _ints(layer, "pads_end", spatial, 0)
    if average and layer.attrs.get("exclude-pad", "false").lower() == "true":
        exact = _padding_counted(Composer(model, layer, x), layer, x)
        if exact is not None:
            return [exact]
    if max(kernel) > MAX_TAPS:
        raise Refuse(f"a {max(kernel)}-tap window: more layers than a kernel is worth")
    exclude_pad = layer.attrs.get("exclude-pad", "false").lower() == "true"
    out_dims = layer.outputs[0].dims
    c = Composer(model, layer, x)
    index = None
    if with_index:
        axis = int(layer.attrs.get("axis", "0")) % len(x.dims)
        inner = int(np.prod(x.dims[axis:]))
        if inner >= 2 ** 31:
            raise Refuse("indices beyond int32")
        flat = np.broadcast_to(np.arange(inner, dtype=np.int32).reshape(x.dims[axis:]), x.dims)
        index = c.const(np.ascontiguousarray(flat), np.int32, "flat_index")
    result = x
    # Innermost axis first: with indices, ties then resolve to the first maximum in row-major scan order.
    for i in reversed(range(spatial)):
        axis = 2 + i
        result, index = _pass(c, result, axis, out_dims[axis], kernel[i], strides[i], dilations[i], pads_begin[i],
                              pads_end[i], average, exclude_pad, index)
    if len(layer.outputs) == 1:
        return [result]
    if index is None:
        return [result, None]
    element = layer.attrs.get("index_element_type", "i64")
    return [result, c.convert(index, element) if element != "i32" else index]
