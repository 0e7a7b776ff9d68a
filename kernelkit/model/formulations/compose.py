"""A small builder for the graphs that replace one layer (the native formulations and rewrites).

`Composer(model, layer, like)` names every new layer after the replaced one (`<name>/<tag>`), turns Python
numbers into constants of the data's element type, and knows the output shapes of the ops the formulations
use, so a formulation reads like the formula it implements. Only ops the MYRIAD 2021.4 plugin compiles
belong here; the real plugin's verdict on each formulation is in kernelkit/facts/data/native-fp16.json.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, add_const, infer, op

BROADCAST = {"auto_broadcast": "numpy"}


class Composer:
    def __init__(self, model, layer, like: Out | None = None, *, dtype=None):
        self.model = model
        self.name = layer.name
        if dtype is None:
            dtype = np.float16 if like is not None and like.precision == "FP16" else np.float32
        self.dtype = np.dtype(dtype)
        self._count = 0

    # ---- values ------------------------------------------------------------------------------------
    def _tag(self, tag: str) -> str:
        self._count += 1
        return f"{self.name}/{tag}"

    def const(self, value, dtype=None, tag: str = "const") -> Out:
        return add_const(self.model, np.asarray(value, dtype=dtype or self.dtype), self._tag(tag))

    def ints(self, values, tag: str = "ints") -> Out:
        """An i64 constant (shapes, axes, orders, indices)."""
        return self.const(np.asarray(values, np.int64), np.int64, tag)

    def value(self, x, like: Out | None = None) -> Out:
        """`x` as a graph value: an Out stays, a number becomes a constant typed like `like` (or the data)."""
        if isinstance(x, Out):
            return x
        dtype = self.dtype
        if like is not None and (like.precision not in FLOAT_PRECISIONS or like.precision == "FP16"):
            from kernelkit.ir.graph import numpy_dtype

            dtype = numpy_dtype(like.precision)
        return self.const(x, dtype)

    def op(self, type_: str, inputs, attrs: dict | None = None, *, tag: str | None = None,
           version: str = "opset1", outputs=None) -> Out:
        inputs = list(inputs)
        if any(d < 0 for v in inputs for d in v.dims):
            raise Refuse("a dynamic dimension: MYRIAD compiles static shapes only (patch --input-shape)")
        if outputs is None:
            outputs = _shape_rule(self.model, type_, inputs, {k: str(v) for k, v in (attrs or {}).items()})
        return op(self.model, type_, self._tag(tag or type_.lower()), inputs, attrs, version=version,
                  outputs=None if outputs is None else [outputs])

    def _binary(self, type_: str, a, b, tag: str | None = None, **attrs) -> Out:
        like = a if isinstance(a, Out) else b if isinstance(b, Out) else None
        return self.op(type_, [self.value(a, like), self.value(b, like)], {**BROADCAST, **attrs}, tag=tag)

    # ---- arithmetic ----------------------------------------------------------------------------------
    def add(self, a, b, tag=None): return self._binary("Add", a, b, tag)
    def sub(self, a, b, tag=None): return self._binary("Subtract", a, b, tag)
    def mul(self, a, b, tag=None): return self._binary("Multiply", a, b, tag)
    def div(self, a, b, tag=None): return self._binary("Divide", a, b, tag, m_pythondiv="true")
    def maximum(self, a, b, tag=None): return self._binary("Maximum", a, b, tag)
    def minimum(self, a, b, tag=None): return self._binary("Minimum", a, b, tag)
    def floor_mod(self, a, b, tag=None): return self._binary("FloorMod", a, b, tag)
    def greater(self, a, b, tag=None): return self._binary("Greater", a, b, tag)
    def less(self, a, b, tag=None): return self._binary("Less", a, b, tag)
    def equal(self, a, b, tag=None): return self._binary("Equal", a, b, tag)

    def neg(self, x: Out, tag=None) -> Out:
        return self.mul(x, -1, tag or "neg")

    def abs(self, x: Out) -> Out:
        """|x| as Maximum(x, -x): the 2021.4 plugin refuses Abs."""
        return self.maximum(x, self.neg(x), "abs")

    def select(self, cond: Out, a, b, tag=None) -> Out:
        like = a if isinstance(a, Out) else b if isinstance(b, Out) else None
        return self.op("Select", [cond, self.value(a, like), self.value(b, like)], BROADCAST, tag=tag)

    def unary(self, type_: str, x: Out, attrs=None, version="opset1") -> Out:
        return self.op(type_, [x], attrs, version=version)

    def exp(self, x): return self.unary("Exp", x)
    def log(self, x): return self.unary("Log", x)
    def sqrt(self, x): return self.unary("Sqrt", x)
    def floor(self, x): return self.unary("Floor", x)

    def round(self, x: Out) -> Out:
        return self.unary("Round", x, {"mode": "half_to_even"}, version="opset5")

    def convert(self, x: Out, element_type: str) -> Out:
        return self.op("Convert", [x], {"destination_type": element_type})

    def horner(self, x: Out, coefficients) -> Out:
        """c0 + x*(c1 + x*(c2 + ...)): coefficients lowest degree first."""
        coefficients = list(coefficients)
        acc = self.value(coefficients[-1], x)
        for c in reversed(coefficients[:-1]):
            acc = self.add(self.mul(acc, x), c)
        return acc

    # ---- shapes --------------------------------------------------------------------------------------
    def reshape(self, x: Out, shape) -> Out:
        return self.op("Reshape", [x, self.ints(shape, "shape")], {"special_zero": "false"})

    def transpose(self, x: Out, order) -> Out:
        return self.op("Transpose", [x, self.ints(order, "order")])

    def concat(self, values: list[Out], axis: int) -> Out:
        return self.op("Concat", values, {"axis": axis % max(len(values[0].dims), 1)})

    def gather(self, x: Out, indices, axis: int) -> Out:
        if not isinstance(indices, Out):
            indices = self.const(np.asarray(indices, np.int32), np.int32, "indices")
        return self.op("Gather", [x, indices, self.const(np.int32(axis % len(x.dims)), np.int32, "axis")])

    def slice(self, x: Out, axis: int, start: int, stop: int, step: int = 1) -> Out:
        """x[..., start:stop:step, ...] on one axis (non-negative start/stop within the axis)."""
        rank = len(x.dims)
        begin, end, strides = [0] * rank, [0] * rank, [1] * rank
        begin[axis], end[axis], strides[axis] = start, stop, step
        mask = [1] * rank
        mask[axis] = 0
        return self.op("StridedSlice", [x, self.ints(begin, "begin"), self.ints(end, "end"),
                                        self.ints(strides, "strides")],
                       {"begin_mask": _csv(mask), "end_mask": _csv(mask), "new_axis_mask": "",
                        "shrink_axis_mask": "", "ellipsis_mask": ""})

    def reduce(self, kind: str, x: Out, axes, keep: bool = True) -> Out:
        return self.op(kind, [x, self.ints(list(axes), "axes")], {"keep_dims": "true" if keep else "false"})

    def matmul_exact(self, a: Out, matrix: np.ndarray) -> Out:
        """a @ matrix with the constant split as fp16 high part + fp16 remainder, two MatMuls summed: the
        weights then carry 22 bits instead of 11 (a DFT's cosines lose 5e-4 each in one fp16 constant)."""
        matrix = np.asarray(matrix, np.float64)
        high = matrix.astype(np.float16)
        low = (matrix - high.astype(np.float64)).astype(np.float16)
        result = self.matmul(a, self.const(high.astype(self.dtype)))
        if np.any(low):
            result = self.add(result, self.matmul(a, self.const(low.astype(self.dtype))))
        return result

    def matmul(self, a: Out, b: Out, transpose_a=False, transpose_b=False) -> Out:
        return self.op("MatMul", [a, b], {"transpose_a": str(transpose_a).lower(),
                                          "transpose_b": str(transpose_b).lower()})


def _csv(values) -> str:
    return ",".join(str(int(v)) for v in values)


def _shape_rule(model, type_: str, inputs: list[Out], attrs: dict[str, str]):
    """(precision, dims) of a new layer, for the ops graph.infer does not know; None lets op() call it."""
    from kernelkit.ir.graph import const_value

    kind = type_.lower()
    first = inputs[0]
    if kind == "concat":
        axis = int(attrs["axis"])
        dims = list(first.dims)
        dims[axis] = sum(v.dims[axis] for v in inputs)
        return first.precision, dims
    if kind == "gather":
        indices = inputs[1].dims
        axis = int(np.asarray(const_value(model, inputs[2])).reshape(()))
        return first.precision, first.dims[:axis] + list(indices) + first.dims[axis + 1:]
    if kind == "stridedslice":
        begin, end, strides = (np.asarray(const_value(model, v)).reshape(-1) for v in inputs[1:4])
        begin_mask = [int(m) for m in attrs.get("begin_mask", "").split(",") if m]
        end_mask = [int(m) for m in attrs.get("end_mask", "").split(",") if m]
        index = tuple(slice(None if begin_mask and begin_mask[i] else int(begin[i]),
                            None if end_mask and end_mask[i] else int(end[i]), int(strides[i]))
                      for i in range(len(begin)))
        return first.precision, list(np.empty(first.dims, np.int8)[index].shape)
    if kind == "unsqueeze":
        axes = sorted(int(a) for a in np.atleast_1d(const_value(model, inputs[1])))
        dims = list(first.dims)
        for a in axes:
            dims.insert(a % (len(dims) + 1), 1)
        return first.precision, dims
    if kind == "tile":
        repeats = [int(r) for r in np.atleast_1d(const_value(model, inputs[1]))]
        dims = [1] * (len(repeats) - len(first.dims)) + list(first.dims)
        return first.precision, [d * r for d, r in zip(dims, [1] * (len(dims) - len(repeats)) + repeats)]
    if kind == "broadcast":
        target = [int(d) for d in np.atleast_1d(const_value(model, inputs[1]))]
        return first.precision, list(np.broadcast_shapes(tuple(first.dims), tuple(target)))
    if kind == "onehot":
        depth = int(np.asarray(const_value(model, inputs[1])).reshape(()))
        axis = int(attrs.get("axis", "-1"))
        dims = list(first.dims)
        dims.insert(axis % (len(dims) + 1), depth)
        return inputs[2].precision, dims
    return infer(model, type_, inputs, attrs)
