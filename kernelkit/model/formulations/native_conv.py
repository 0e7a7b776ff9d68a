"""Native formulation of convolutions whose weights are not constant (fed as an input or computed, as
ConvInteger and QLinearConv convert): the MYRIAD 2021.4 plugin's convolution stages need constant weights
("Expecting operation v1::Convolution ... to have constant kernel", "Deconvolution: inputs.size() == 1").

A convolution is a sum over its kernel taps: for tap (a, b) the input is gathered at the positions that tap
reads for every output position (constant indices, 0 where they fall in the padding), and its channels are
multiplied by the weights' [C, O] slice of that tap (a MatMul, batched over groups). A transposed
convolution is the same the other way round: the tap's channels are multiplied first, then gathered at
the output positions they land on. Shapes are static; the output size is the layer's own.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_source, input_of

MAX_TAPS = 49           # 7x7; each tap costs a few layers


def _ints(layer, name: str, count: int, default: int) -> list[int]:
    values = [int(v) for v in layer.attrs.get(name, "").split(",") if v.strip()]
    return values or [default] * count


def _gather_axis(c: Composer, x: Out, axis: int, positions: np.ndarray) -> Out:
    """x along `axis` at `positions` (one per output position; -1 or beyond the axis give 0)."""
    n = x.dims[axis]
    inside = (positions >= 0) & (positions < n)
    picked = c.gather(x, np.clip(positions, 0, n - 1).astype(np.int32), axis)
    if inside.all():
        return picked
    shape = [1] * len(picked.dims)
    shape[axis] = len(positions)
    mask = c.greater(c.const(inside.astype(np.float32).reshape(shape), np.float32), 0.5)
    return c.select(mask, picked, 0.0)


def _auto_pads(layer, sizes, kernel, strides, dilations, transposed: bool) -> list[int]:
    """The leading pads: explicit ones, or those auto_pad same_upper/same_lower/valid imply (forward only)."""
    mode = layer.attrs.get("auto_pad", "explicit").lower()
    if mode in ("explicit", "notset", ""):
        return _ints(layer, "pads_begin", len(sizes), 0)
    if mode == "valid":
        return [0] * len(sizes)
    if transposed or mode not in ("same_upper", "same_lower"):
        raise Refuse(f"auto_pad {mode} on this op: pads must be explicit")
    pads = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append(total // 2 if mode == "same_upper" else total - total // 2)
    return pads


def _tap_weights(c: Composer, w: Out, tap: tuple, groups: int, transposed: bool) -> Out:
    """The [groups, C/g, O/g] weight slice of one tap (channels in, channels out)."""
    spatial = len(tap)
    lead = w.dims[:len(w.dims) - spatial]
    value = w
    for i, t in enumerate(tap):
        value = c.slice(value, len(lead) + i, t, t + 1)
    value = c.reshape(value, lead)
    if groups == 1 and len(lead) == 2:
        value = c.reshape(value, [1] + lead)
    # forward: [G, O/g, C/g] -> [G, C/g, O/g]; transposed weights are already [G, C/g, O/g]
    return value if transposed else c.transpose(value, [0, 2, 1])


def _computed_weights(model, layer) -> bool:
    return len(layer.inputs) > 1 and constant_source(model, input_of(model, layer, 1)) is None


@formulation("convolution", "groupconvolution", "convolutionbackpropdata", "groupconvolutionbackpropdata", text="per "
             "kernel tap: Gather of the positions it reads (or writes), a MatMul with the tap's weight slice, summed",
             needed=_computed_weights)
def convolution(model, layer) -> Out:
    kind = layer.type.lower()
    transposed = "backprop" in kind
    grouped = kind.startswith("group")
    x, w = input_of(model, layer, 0), input_of(model, layer, 1)
    if any(d <= 0 for d in x.dims + w.dims):
        raise Refuse("a dynamic or zero dimension")
    element = layer.outputs[0].element_type
    c = Composer(model, layer, x if x.precision in FLOAT_PRECISIONS else None)
    # Integer data or weights (ConvInteger) are computed in float, as MYRIAD does (exact for 8-bit values).
    x, w = (v if v.precision in FLOAT_PRECISIONS else c.convert(v, "f32") for v in (x, w))
    spatial = len(x.dims) - 2
    if spatial not in (1, 2):
        raise Refuse(f"{spatial}-D convolution")
    kernel = w.dims[-spatial:]
    if int(np.prod(kernel)) > MAX_TAPS:
        raise Refuse(f"a {kernel} kernel: more layers than a kernel is worth")
    strides, dilations = _ints(layer, "strides", spatial, 1), _ints(layer, "dilations", spatial, 1)
    pads = _auto_pads(layer, x.dims[2:], kernel, strides, dilations, transposed)
    groups = w.dims[0] if grouped else 1
    n, channels = x.dims[:2]
    out_dims = list(layer.outputs[0].dims)
    outputs = out_dims[1]
    spatial_in, spatial_out = x.dims[2:], out_dims[2:]
    total = None
    for tap in np.ndindex(*kernel):
        weights = _tap_weights(c, w, tap, groups, transposed)                # [G, C/g, O/g]
        if not transposed:
            value = x
            for i, t in enumerate(tap):
                positions = np.arange(spatial_out[i]) * strides[i] + t * dilations[i] - pads[i]
                value = _gather_axis(c, value, 2 + i, positions)
            points = spatial_out
        else:
            value, points = x, spatial_in
        # [N, C, P...] -> [N, G, P, C/g] @ [G, C/g, O/g] -> [N, G, P, O/g]
        flat = int(np.prod(points))
        grouped_in = c.reshape(value, [n, groups, channels // groups, flat])
        product = c.matmul(c.transpose(grouped_in, [0, 1, 3, 2]), weights)
        merged = c.reshape(c.transpose(product, [0, 1, 3, 2]), [n, outputs] + list(points))
        if transposed:
            for i, t in enumerate(tap):
                # output position o gets input h where o = h*s + t*d - p
                source = np.arange(spatial_out[i]) + pads[i] - t * dilations[i]
                positions = np.where(source % strides[i] == 0, source // strides[i], -1)
                merged = _gather_axis(c, merged, 2 + i, positions)
        total = merged if total is None else c.add(total, merged)
    return total if layer.outputs[0].precision in FLOAT_PRECISIONS else c.convert(total, element)
