"""Native formulations of tensor ops the MYRIAD 2021.4 plugin has no stage for, built from Transpose,
Reshape, StridedSlice, Concat, Gather, MatMul and element-wise ops on static shapes: ReduceProd, Col2Im,
GatherND-8 (through the plugin's GatherND-5), Roll, ReduceLogicalOr, Bucketize.

Like native_math.py they are measured with fp16 rounding between layers (kernelkit/facts/data/
native-fp16.json); here that mostly means products and sums are taken in an order whose roundings stay
few (a pairwise product rounds log2(n) times per element, not n).
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_input, input_of


def _static(x: Out, what: str = "input") -> list[int]:
    if any(d <= 0 for d in x.dims):
        raise Refuse(f"the {what} has a dynamic or zero dimension")
    return list(x.dims)


def _axes(model, layer, index: int, rank: int) -> list[int]:
    value = constant_input(model, layer, index)
    if value is None:
        raise Refuse(f"axes (input {index}) must be constant")
    return sorted({int(a) % rank for a in np.atleast_1d(value)}) if rank else []


def _move_last(c: Composer, x: Out, axes: list[int]) -> tuple[Out, list[int]]:
    """x with `axes` moved to the end and merged into one: ([kept..., prod(axes)], kept dims)."""
    dims = _static(x)
    kept = [i for i in range(len(dims)) if i not in axes]
    if axes != list(range(len(dims) - len(axes), len(dims))):
        x = c.transpose(x, kept + axes)
    length = int(np.prod([dims[a] for a in axes]))
    return c.reshape(x, [dims[i] for i in kept] + [length]), [dims[i] for i in kept]


def _pairwise(c: Composer, x: Out, combine, pad_value: float) -> Out:
    """Reduce the last axis by halving it: combine(first half, second half) until one element is left."""
    length = x.dims[-1]
    axis = len(x.dims) - 1
    while length > 1:
        if length % 2:
            pad_shape = x.dims[:-1] + [1]
            x = c.concat([x, c.const(np.full(pad_shape, pad_value, c.dtype))], axis)
            length += 1
        half = length // 2
        x = combine(c.slice(x, axis, 0, half), c.slice(x, axis, half, length))
        length = half
    return x


@formulation("reduceprod", text="pairwise products of the reduced axes (moved last): log2(n) Multiply layers")
def reduce_prod(model, layer) -> Out:
    """ReduceProd = pairwise products over the reduced axes (moved last and merged)."""
    x = input_of(model, layer, 0)
    if x.precision not in FLOAT_PRECISIONS:
        raise Refuse(f"input is {x.precision}; the formulation is for floating point")
    dims = _static(x)
    axes = _axes(model, layer, 1, len(dims))
    if not axes:
        raise Refuse("no axis to reduce")
    c = Composer(model, layer, x)
    moved, kept_dims = _move_last(c, x, axes)
    product = _pairwise(c, moved, c.mul, 1.0)
    keep = layer.attrs.get("keep_dims", "false").lower() == "true"
    shape = [1 if i in axes else d for i, d in enumerate(dims)] if keep else kept_dims
    return c.reshape(product, shape) if shape else _scalar(c, product)


def _scalar(c: Composer, x: Out) -> Out:
    """A one-element tensor as rank 0 (Squeeze; the plugin refuses an empty Reshape target)."""
    return c.op("Squeeze", [c.reshape(x, [1]), c.ints([0], "axis")], outputs=(x.precision, []))


MAX_MATRIX = 1 << 20        # entries of a constant scatter matrix (2 MB in fp16)


@formulation("col2im", text="MatMul with a constant 0/1 block-to-pixel matrix (overlaps add up)")
def col2im(model, layer) -> Out:
    """Col2Im-15 = MatMul with a constant 0/1 matrix: column (block position k, block l) -> image pixel;
    overlapping blocks add up in the MatMul."""
    x = input_of(model, layer, 0)
    _static(x)
    image, block = constant_input(model, layer, 1), constant_input(model, layer, 2)
    if image is None or block is None:
        raise Refuse("image_shape and block_shape (inputs 1, 2) must be constant")
    (height, width), (kh, kw) = (int(v) for v in np.ravel(image)), (int(v) for v in np.ravel(block))
    sh, sw = (int(v) for v in layer.attrs.get("strides", "1,1").split(","))
    dh, dw = (int(v) for v in layer.attrs.get("dilations", "1,1").split(","))
    pt, pl = (int(v) for v in layer.attrs.get("pads_begin", "0,0").split(","))
    pb, pr = (int(v) for v in layer.attrs.get("pads_end", "0,0").split(","))
    blocks_h = (height + pt + pb - dh * (kh - 1) - 1) // sh + 1
    blocks_w = (width + pl + pr - dw * (kw - 1) - 1) // sw + 1
    batched = len(x.dims) == 3
    n = x.dims[0] if batched else 1
    rows, count = x.dims[-2], x.dims[-1]
    if rows % (kh * kw) or count != blocks_h * blocks_w:
        raise Refuse(f"input {x.dims} does not match blocks {kh}x{kw} over {blocks_h}x{blocks_w} positions")
    channels = rows // (kh * kw)
    if kh * kw * count * height * width > MAX_MATRIX:
        raise Refuse(f"the scatter matrix would have {kh * kw * count * height * width} entries")
    matrix = np.zeros((kh * kw, count, height * width), np.float32)
    for k in range(kh * kw):
        ki, kj = divmod(k, kw)
        for l in range(count):
            li, lj = divmod(l, blocks_w)
            row, col = li * sh - pt + ki * dh, lj * sw - pl + kj * dw
            if 0 <= row < height and 0 <= col < width:
                matrix[k, l, row * width + col] = 1
    c = Composer(model, layer, x)
    flat = c.reshape(x, [n, channels, kh * kw * count])
    image_flat = c.matmul(flat, c.const(matrix.reshape(kh * kw * count, height * width)))
    return c.reshape(image_flat, ([n] if batched else []) + [channels, height, width])


@formulation("gathernd", text="GatherND-5 and a Reshape to GatherND-8's batch dims")
def gather_nd_8(model, layer) -> Out:
    """GatherND-8 = GatherND-5 (which the plugin compiles) and a Reshape: v5 merges the batch dims of its
    output into one, v8 keeps them."""
    if layer.version != "opset8":
        raise Refuse(f"{layer.version}: only GatherND-8 is formulated")
    data, indices = input_of(model, layer, 0), input_of(model, layer, 1)
    _static(data)
    _static(indices, "indices")
    c = Composer(model, layer, data)
    batch_dims = int(layer.attrs.get("batch_dims", "0"))
    out_dims = list(layer.outputs[0].dims)
    merged = ([int(np.prod(out_dims[:batch_dims]))] if batch_dims else []) + out_dims[batch_dims:]
    gathered = c.op("GatherND", [data, indices], {"batch_dims": batch_dims}, version="opset5",
                    outputs=(data.precision, merged))
    return c.reshape(gathered, out_dims) if merged != out_dims else gathered


@formulation("roll", text="per rolled axis a Concat of its two slices")
def roll(model, layer) -> Out:
    """Roll-7 with constant shifts = per rolled axis a Concat of its two slices, the tail first."""
    x = input_of(model, layer, 0)
    _static(x)
    shift, axes = constant_input(model, layer, 1), constant_input(model, layer, 2)
    if shift is None or axes is None:
        raise Refuse("shift and axes (inputs 1, 2) must be constant")
    rank = len(x.dims)
    axes = [int(a) % rank for a in np.atleast_1d(axes)]
    shifts = np.broadcast_to(np.atleast_1d(shift), (len(axes),))
    total: dict[int, int] = {}
    for axis, amount in zip(axes, shifts):
        total[axis] = (total.get(axis, 0) + int(amount)) % x.dims[axis]
    c = Composer(model, layer, x)
    result = x
    for axis, amount in sorted(total.items()):
        if amount:
            n = x.dims[axis]
            result = c.concat([c.slice(result, axis, n - amount, n), c.slice(result, axis, 0, n - amount)], axis)
    if result is x:
        return c.reshape(x, x.dims) if x.dims else c.mul(x, 1)
    return result


@formulation("reducelogicalor", text="Convert to f16, ReduceMax, Greater 0.5")
def reduce_logical_or(model, layer) -> Out:
    """ReduceLogicalOr of booleans = Convert to f16, ReduceMax, > 0.5 (the plugin has no ReduceOr stage)."""
    x = input_of(model, layer, 0)
    axes = constant_input(model, layer, 1)
    if axes is None:
        raise Refuse("axes (input 1) must be constant")
    c = Composer(model, layer, dtype=np.float16)
    keep = layer.attrs.get("keep_dims", "false").lower() == "true"
    rank = len(x.dims)
    peak = c.reduce("ReduceMax", c.convert(x, "f16"), sorted({int(a) % rank for a in np.atleast_1d(axes)}), keep)
    return c.greater(peak, 0.5)


@formulation("bucketize", text="one broadcast comparison against the constant boundaries, ReduceSum of the matches")
def bucketize(model, layer) -> Out:
    """Bucketize-3 with constant boundaries = how many boundaries lie below x (with_right_bound) or at or
    below it: one broadcast comparison against them all and a ReduceSum of the matches (in fp16: exact up to
    2048 boundaries)."""
    x, buckets = input_of(model, layer, 0), constant_input(model, layer, 1)
    if buckets is None:
        raise Refuse("buckets (input 1) must be constant")
    _static(x)
    boundaries = np.asarray(buckets, np.float64).reshape(-1)
    if boundaries.size > 2048:
        raise Refuse(f"{boundaries.size} boundaries")
    c = Composer(model, layer, x if x.precision in FLOAT_PRECISIONS else None)
    value = x if x.precision in FLOAT_PRECISIONS else c.convert(x, "f32")
    column = c.reshape(value, x.dims + [1])
    edges = c.const(boundaries.astype(c.dtype).reshape([1] * len(x.dims) + [-1]))
    right = layer.attrs.get("with_right_bound", "true").lower() == "true"
    # right bound: boundaries < x; else boundaries <= x, i.e. not (x < boundary)
    below = c.greater(column, edges) if right else c.op("LogicalNot", [c.less(column, edges)])
    count = c.reduce("ReduceSum", c.convert(below, "f16"), [len(x.dims)], keep=False)
    return c.convert(count, layer.attrs.get("output_type", "i64"))
