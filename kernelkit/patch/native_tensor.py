"""Native formulations of tensor ops the MYRIAD 2021.4 plugin has no stage for, built from Transpose,
Reshape, StridedSlice, Concat, Gather, MatMul and element-wise ops on static shapes: ReduceProd,
ReduceLogicalOr, Roll.

Like native_math.py they are measured with fp16 rounding between layers (kernelkit/patch/data/
native-fp16.json); here that mostly means products and sums are taken in an order whose roundings stay
few (a pairwise product rounds log2(n) times per element, not n).
"""

from __future__ import annotations

import numpy as np

from .base import Refuse
from .compose import Composer
from .graph import FLOAT_PRECISIONS, Out, constant_input, input_of


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


FORMULATIONS = {
    "reduceprod": (reduce_prod, "pairwise products of the reduced axes (moved last): log2(n) Multiply layers"),
}
