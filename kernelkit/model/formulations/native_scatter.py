"""Native formulations of the scatters the MYRIAD 2021.4 plugin refuses: ScatterNDUpdate (no stage) and
ScatterElementsUpdate-12 with a reduction (the plugin's ScatterElementsUpdate-3 has none), indices
computed at run time.

- ScatterNDUpdate without reduction becomes the plugin's ScatterUpdate on a flattened view: the first k
  dimensions merge into one, the index tuples into one linear index (i32 arithmetic).
- With a reduction (sum, prod, max, min), and ScatterElementsUpdate-12, the updates are applied one by one
  in their order: each is a mask (the linear index of every data element compared with the update's target)
  and a Select of the combined value. Comparisons run in fp16 (the plugin compares FP16 only), exact while
  indices stay below 2048; the update count is bounded because each costs a few layers.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import Out, input_of

MAX_UPDATES = 64
EXACT_INDEX = 2048       # integers fp16 holds exactly
COMBINE = {"sum": "Add", "prod": "Multiply", "max": "Maximum", "min": "Minimum"}


def _static(*values: Out) -> None:
    if any(d <= 0 for v in values for d in v.dims):
        raise Refuse("a dynamic or zero dimension")


def _normalised(c: Composer, index: Out, size: int) -> Out:
    """An i32 index with negative values counted from the end."""
    index = c.convert(index, "i32")
    return c.add(index, c.mul(c.convert(c.less(c.convert(index, "f16"), 0), "i32"), np.int32(size)))


def _linear_nd(c: Composer, indices: Out, dims: list[int]) -> Out:
    """[..., k] index tuples into the first k dims of `dims` -> [...] linear i32 indices."""
    k = indices.dims[-1]
    lead = indices.dims[:-1]
    total = None
    for j in range(k):
        stride = int(np.prod(dims[j + 1:k]))
        part = _normalised(c, c.reshape(c.slice(indices, len(indices.dims) - 1, j, j + 1), lead or [1]), dims[j])
        part = c.mul(part, np.int32(stride)) if stride != 1 else part
        total = part if total is None else c.add(total, part)
    return total


@formulation("scatterndupdate", text="ScatterUpdate on the flattened leading dims (no reduction); with a reduction, "
             "each update as Equal mask + Select")
def scatter_nd(model, layer) -> Out:
    """ScatterNDUpdate on a [prod(first k dims), rest] view."""
    data, indices, updates = (input_of(model, layer, i) for i in range(3))
    _static(data, indices, updates)
    reduction = layer.attrs.get("reduction", "none").lower()
    c = Composer(model, layer, data)
    dims = data.dims
    k = indices.dims[-1]
    rows, rest = int(np.prod(dims[:k])), dims[k:]
    width = int(np.prod(rest)) if rest else 1
    count = int(np.prod(indices.dims[:-1])) if len(indices.dims) > 1 else 1
    flat_data = c.reshape(data, [rows, width])
    linear = c.reshape(_linear_nd(c, indices, dims), [count])
    flat_updates = c.reshape(updates, [count, width])
    if reduction == "none":
        scattered = c.op("ScatterUpdate", [flat_data, linear, flat_updates, c.const(np.int32(0), np.int32, "axis")],
                         version="opset3", outputs=(flat_data.precision, flat_data.dims))
        return c.reshape(scattered, dims)
    if reduction not in COMBINE:
        raise Refuse(f"reduction {reduction!r}")
    if count > MAX_UPDATES or rows > EXACT_INDEX:
        raise Refuse(f"{count} updates into {rows} rows: beyond {MAX_UPDATES} updates or {EXACT_INDEX} rows")
    row_ids = c.const(np.arange(rows, dtype=np.float16).reshape(rows, 1), np.float16, "rows")
    targets = c.convert(linear, "f16")
    result = flat_data
    for u in range(count):
        hit = c.equal(row_ids, c.reshape(c.slice(targets, 0, u, u + 1), [1, 1]))        # [rows, 1]
        update = c.slice(flat_updates, 0, u, u + 1)                                      # [1, width]
        combined = c.op(COMBINE[reduction], [result, update], {"auto_broadcast": "numpy"})
        result = c.select(hit, combined, result)
    return c.reshape(result, dims)


@formulation("scatterelementsupdate", text="each update as an Equal mask on the element index + Select of the "
             "combined value")
def scatter_elements(model, layer) -> Out:
    """ScatterElementsUpdate-12 with a reduction: each update element, in order, combined into the data
    element its index addresses along `axis` (use_init_val true keeps the data as the first operand)."""
    data, indices, updates = (input_of(model, layer, i) for i in range(3))
    _static(data, indices, updates)
    reduction = layer.attrs.get("reduction", "none").lower()
    if layer.attrs.get("use_init_val", "true").lower() != "true":
        raise Refuse("use_init_val=false is not formulated")
    from kernelkit.ir.graph import constant_input

    axis_value = constant_input(model, layer, 3)
    if axis_value is None:
        raise Refuse("axis (input 3) must be constant")
    rank = len(data.dims)
    axis = int(np.asarray(axis_value).reshape(())) % rank
    count = int(np.prod(updates.dims))
    if reduction not in COMBINE and reduction != "none":
        raise Refuse(f"reduction {reduction!r}")
    size = int(np.prod(data.dims))
    if count > MAX_UPDATES or size > EXACT_INDEX:
        raise Refuse(f"{count} updates into {size} elements: beyond {MAX_UPDATES} updates or {EXACT_INDEX} elements")
    c = Composer(model, layer, data)
    # Every data element's linear index, and for each update element the linear index it addresses: its own
    # position with the axis coordinate replaced by its index (computed).
    strides = [int(np.prod(data.dims[i + 1:])) for i in range(rank)]
    flat_data = c.reshape(data, [size])
    element_ids = c.const(np.arange(size, dtype=np.float16), np.float16, "elements")
    flat_indices = c.reshape(_normalised(c, indices, data.dims[axis]), [count])
    flat_updates = c.reshape(updates, [count])
    result = flat_data
    for u, position in enumerate(np.ndindex(*updates.dims)):
        fixed = sum(p * s for i, (p, s) in enumerate(zip(position, strides)) if i != axis)
        index = c.convert(c.slice(flat_indices, 0, u, u + 1), "f16")
        target = c.add(c.mul(index, float(strides[axis])), float(fixed)) if strides[axis] != 1 else \
            c.add(index, float(fixed))
        hit = c.equal(element_ids, target)
        update = c.slice(flat_updates, 0, u, u + 1)
        combined = update if reduction == "none" else \
            c.op(COMBINE[reduction], [result, update], {"auto_broadcast": "numpy"})
        result = c.select(hit, combined, result)
    return c.reshape(result, data.dims)
