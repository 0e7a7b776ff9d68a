"""Deterministic case inputs: seeded, per-input dtype, fp16-representable floats, optional edge values."""

from __future__ import annotations

import numpy as np

from kernelkit.core.errors import KernelkitError

FP16_MAX = 65504.0
FP16_SMALLEST_SUBNORMAL = 2.0 ** -24
FP16_SMALLEST_NORMAL = 2.0 ** -14
# What "edges" mixes into float inputs: the values fp16 kernels get wrong first.
FLOAT_EDGES = (0.0, -0.0, FP16_MAX, -FP16_MAX, FP16_SMALLEST_SUBNORMAL, -FP16_SMALLEST_SUBNORMAL,
               FP16_SMALLEST_NORMAL, -FP16_SMALLEST_NORMAL, 1.0, -1.0)
EDGE_FRACTION = 0.125   # share of elements replaced by edge values

DTYPES = {"f16": np.float16, "i32": np.int32}


def _int_edges(low: int, high: int) -> list[int]:
    # Integer inputs are often indices or counts: keep edges inside the declared range.
    return sorted({v for v in (0, 1, -1, low, high) if low <= v <= high})


def generate_input(rng: np.random.Generator, shape, dtype: str, low: float, high: float,
                   values: str = "uniform") -> np.ndarray:
    shape = tuple(int(d) for d in shape)
    if dtype == "f16":
        if max(abs(low), abs(high)) > FP16_MAX:
            raise ValueError(f"[{low}, {high}] reaches beyond the fp16 range (±{FP16_MAX:g})")
        data = rng.uniform(low, high, size=shape).astype(np.float16)
        edges = np.array(FLOAT_EDGES, dtype=np.float16)
    elif dtype == "i32":
        lo, hi = int(np.ceil(low)), int(np.floor(high))
        if hi < lo:
            raise ValueError(f"no integer lies in [{low}, {high}]")
        data = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64).astype(np.int32)
        edges = np.array(_int_edges(lo, hi), dtype=np.int32)
    else:
        raise ValueError(f"unknown dtype {dtype!r}")
    if values == "edges" and data.size and edges.size:
        count = max(min(data.size, edges.size), int(round(data.size * EDGE_FRACTION)))
        positions = rng.choice(data.size, size=count, replace=False)
        # Every edge value appears at least once when there is room for it.
        picks = np.concatenate([np.arange(edges.size), rng.integers(0, edges.size, size=count)])[:count]
        flat = data.reshape(-1)
        flat[positions] = edges[picks]
    return data


def fixed_input(value, shape, dtype: str) -> np.ndarray:
    """A case's `fixed` value as the input tensor: its own shape or a single number filling the shape;
    floats rounded to fp16, integers exact in int32. ValueError says what does not fit."""
    shape = tuple(int(d) for d in shape)
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        if array.size != 1:
            raise ValueError(f"the value has shape {list(array.shape)}, the case declares {list(shape)}")
        array = np.full(shape, array.reshape(-1)[0])
    if not np.all(np.isfinite(array)):
        raise ValueError("the value is not finite")
    if dtype == "i32":
        if not np.array_equal(array, np.round(array)):
            raise ValueError("an i32 input needs whole numbers")
        if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
            raise ValueError("the value does not fit int32")
        return array.astype(np.int32)
    if dtype == "f16":
        if array.size and np.abs(array).max() > FP16_MAX:
            raise ValueError(f"the value reaches beyond the fp16 range (±{FP16_MAX:g})")
        return array.astype(np.float16)
    raise ValueError(f"unknown dtype {dtype!r}")


def generate_inputs(case, *, path=None) -> list[np.ndarray]:
    """The inputs of one spec Case, the same on every run and machine (numpy's PCG64 is portable).
    Inputs in `case.fixed` take that value and draw nothing from the generator."""
    if case.values not in ("uniform", "edges"):
        raise KernelkitError(f"values must be \"uniform\" or \"edges\", not {case.values!r}", path=path,
                             where=f"case {case.name}")
    rng = np.random.default_rng(case.seed)
    dtypes = list(case.dtypes) or ["f16"] * len(case.shapes)
    if len(dtypes) < len(case.shapes):
        dtypes += ["f16"] * (len(case.shapes) - len(dtypes))
    arrays = []
    for index, shape in enumerate(case.shapes):
        dtype = dtypes[index]
        if dtype not in DTYPES:
            raise KernelkitError(f"input {index} has dtype {dtype!r}", path=path, where=f"case {case.name}",
                                 hint="use \"f16\" or \"i32\"")
        fixed = getattr(case, "fixed", None) or {}
        if index in fixed:
            try:
                arrays.append(fixed_input(fixed[index], shape, dtype))
            except ValueError as exc:
                raise KernelkitError(f"fixed value of input {index}: {exc}", path=path, where=f"case {case.name}",
                                     hint="give a number, or nested arrays of the input's shape") from None
            continue
        try:
            arrays.append(generate_input(rng, shape, dtype, case.low, case.high, case.values))
        except ValueError as exc:
            raise KernelkitError(f"cannot generate input {index}: {exc}", path=path,
                                 where=f"case {case.name}", hint="check low/high for this case") from None
    return arrays
