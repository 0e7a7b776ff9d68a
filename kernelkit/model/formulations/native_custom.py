"""Native formulations of the kernel library's own layer types, which no OpenVINO opset has (an IR carries
them only when a tool or a hand wrote them; ONNX's converter decomposes these ops): Trilu, Hardmax,
LayerNormalization, AffineGrid and Det, with the attributes the library's kernels read (kernels/*/kernel.toml):

- Trilu (`upper`, `k`): a Select with a constant mask of the last two axes;
- Hardmax (`axis`): 1 where x equals its maximum at the first such position, the position found as the
  smallest index among the maxima (fp16 holds indices exactly up to 2048);
- LayerNormalization (`axis`, `epsilon`; scale, bias): MVN-6 over the axes from `axis` on, scale, bias;
- AffineGrid (`size`, `align_corners`): the constant base grid times theta, one MatMul;
- Det: the closed forms for 1x1, 2x2 and 3x3 matrices (larger ones keep the kernel: elimination in fp16
  needs pivoting, which is data-dependent).
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.native_norm import mvn
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_input, input_of

MAX_INDEX = 2048


def _float(model, layer, index: int = 0) -> Out:
    x = input_of(model, layer, index)
    if x.precision not in FLOAT_PRECISIONS:
        raise Refuse(f"input {index} is {x.precision}; the formulation is for floating point")
    if any(d <= 0 for d in x.dims):
        raise Refuse("a dynamic or zero dimension")
    return x


def _int_attr(layer, name: str, default: int) -> int:
    value = layer.attrs.get(name, str(default)).strip().lower()
    return {"true": 1, "false": 0}.get(value, None) if value in ("true", "false") else int(float(value))


@formulation("trilu", text="Select with a constant triangle mask of the last two axes")
def trilu(model, layer) -> Out:
    x = _float(model, layer)
    if len(x.dims) < 2:
        raise Refuse("Trilu needs rank 2 or more")
    k = _int_attr(layer, "k", 0)
    if len(layer.inputs) > 1:
        value = constant_input(model, layer, 1)
        if value is None:
            raise Refuse("k (input 1) must be constant")
        k = int(np.asarray(value).reshape(()))
    height, width = x.dims[-2:]
    rows, cols = np.indices((height, width))
    keep = cols - rows >= k if _int_attr(layer, "upper", 1) else cols - rows <= k
    c = Composer(model, layer, x)
    return c.select(c.const(keep.reshape([1] * (len(x.dims) - 2) + [height, width]), np.bool_, "mask"), x, 0.0)


@formulation("hardmax", text="Equal(index, ReduceMin(Select(x == ReduceMax(x), index, n))): the first maximum")
def hardmax(model, layer) -> Out:
    x = _float(model, layer)
    rank = len(x.dims)
    axis = _int_attr(layer, "axis", -1) % rank
    n = x.dims[axis]
    if n > MAX_INDEX:
        raise Refuse(f"an axis of {n}: indices beyond fp16's exact integers")
    c = Composer(model, layer, x)
    shape = [1] * rank
    shape[axis] = n
    index = c.const(np.arange(n, dtype=np.float32).reshape(shape), tag="index")
    peak = c.reduce("ReduceMax", x, [axis], keep=True)
    first = c.reduce("ReduceMin", c.select(c.equal(x, peak), index, float(n)), [axis], keep=True)
    return c.convert(c.equal(index, first), layer.outputs[0].element_type or "f32")


@formulation("layernormalization", text="MVN-6 over the axes from `axis` on, times scale plus bias")
def layer_normalization(model, layer) -> Out:
    x = _float(model, layer)
    rank = len(x.dims)
    axis = _int_attr(layer, "axis", -1) % rank
    c = Composer(model, layer, x)
    normalised = mvn(c, x, list(range(axis, rank)), {"normalize_variance": "true",
                                                     "eps": layer.attrs.get("epsilon", "1e-5"),
                                                     "eps_mode": "inside_sqrt"})
    result = c.mul(normalised, input_of(model, layer, 1))
    return c.add(result, input_of(model, layer, 2)) if len(layer.inputs) > 2 else result


def _base(size: int, align: bool) -> np.ndarray:
    if align:
        return np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
    return (np.arange(size) * 2.0 + 1.0) / size - 1.0


@formulation("affinegrid", text="the constant base grid times theta (one MatMul)")
def affine_grid(model, layer) -> Out:
    theta = _float(model, layer)
    size = [int(v) for v in layer.attrs.get("size", "").split(",") if v.strip()]
    if len(layer.inputs) > 1:
        value = constant_input(model, layer, 1)
        if value is None:
            raise Refuse("size (input 1) must be constant")
        size = [int(v) for v in np.ravel(value)]
    if len(size) not in (4, 5):
        raise Refuse(f"size {size}: 2-D or 3-D grids only")
    align = bool(_int_attr(layer, "align_corners", 0))
    spatial = size[2:]
    mesh = np.meshgrid(*[_base(s, align) for s in spatial], indexing="ij")
    points = np.stack(list(mesh[::-1]) + [np.ones(spatial)], axis=-1).reshape(-1, len(spatial) + 1)
    c = Composer(model, layer, theta)
    # [1, points, k] @ theta^T [N, k, j] -> [N, points, j]
    grid = c.matmul(c.const(points[None].astype(c.dtype)), theta, transpose_b=True)
    return c.reshape(grid, [theta.dims[0]] + spatial + [len(spatial)])


@formulation("det", text="closed forms for 1x1, 2x2 and 3x3 matrices")
def det(model, layer) -> Out:
    x = _float(model, layer)
    if len(x.dims) < 2 or x.dims[-1] != x.dims[-2]:
        raise Refuse("Det needs square matrices in the last two axes")
    n = x.dims[-1]
    if n > 3:
        raise Refuse(f"{n}x{n} matrices: elimination in fp16 needs data-dependent pivoting")
    c = Composer(model, layer, x)
    lead = x.dims[:-2]
    flat = c.reshape(x, (lead or []) + [n * n])
    e = [c.reshape(c.slice(flat, len(lead), i, i + 1), lead or [1]) for i in range(n * n)]
    if n == 1:
        result = e[0]
    elif n == 2:
        result = c.sub(c.mul(e[0], e[3]), c.mul(e[1], e[2]))
    else:
        minor = lambda a, b, p, q: c.sub(c.mul(e[a], e[b]), c.mul(e[p], e[q]))  # noqa: E731
        result = c.add(c.sub(c.mul(e[0], minor(4, 8, 5, 7)), c.mul(e[1], minor(3, 8, 5, 6))),
                       c.mul(e[2], minor(3, 7, 4, 6)))
    if not lead:
        return c.op("Squeeze", [result, c.ints([0], "axis")], outputs=(result.precision, []))
    return result
