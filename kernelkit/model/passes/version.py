"""Version patcher: downgrade ops newer than the target's IR reader, and write IR v10 for 2021.4.

Each downgrade keeps the op's meaning exactly or is refused with the reason (notes §1.7, §1.9).
"""

from __future__ import annotations

import re

import numpy as np

from kernelkit.facts.target import Target
from kernelkit.model.passes.base import PatchContext, Refuse, describe
from kernelkit.ir.graph import add_const, add_op, constant_input, input_of, out, prune_dead, replace, unused
from kernelkit.ir.model import v10_obstacle

NAME = "version"

def opset_number(layer) -> int | None:
    v = layer.version
    return int(v[5:]) if v.startswith("opset") and v[5:].isdigit() else None


def _axis(model, layer, index: int, rank: int) -> int:
    value = constant_input(model, layer, index)
    if value is None or np.size(value) != 1:
        raise Refuse(f"input {index} (axis) must be a constant scalar")
    axis = int(np.asarray(value).reshape(()))
    if not -rank <= axis < rank:
        raise Refuse(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def gather(ctx: PatchContext, layer) -> str:
    """Gather-8 -> Gather-7: constant negative indices are made non-negative (v7 does not wrap them)."""
    model = ctx.model
    data = input_of(model, layer, 0)
    axis = _axis(model, layer, 2, len(data.dims))
    indices = constant_input(model, layer, 1)
    note = ""
    if indices is None:
        note = " (computed indices: v7 needs them >= 0)"
    elif (np.asarray(indices) < 0).any():
        size = data.dims[axis]
        fixed = np.where(indices < 0, indices + size, indices).astype(indices.dtype)
        if (fixed < 0).any() or (fixed >= size).any():
            raise Refuse(f"an index is out of range for axis {axis} of size {size}")
        new = add_const(model, fixed, f"{layer.name}/indices")
        old_edge = model.input_edge(layer, layer.inputs[1].id)
        old_indices = model.producer(layer, layer.inputs[1].id)[0]
        model.disconnect(old_edge)
        model.connect(new.layer, new.port.id, layer, layer.inputs[1].id)
        prune_dead(model, [old_indices])
        note = f" (indices {np.asarray(indices).reshape(-1).tolist()[:8]} -> {fixed.reshape(-1).tolist()[:8]})"
    target = 7 if ctx.target.opset_ceiling >= 7 else 1
    if target == 1 and int(layer.attrs.get("batch_dims", "0")) != 0:
        raise Refuse("batch_dims != 0 needs Gather-7, which this target does not have")
    layer.version = f"opset{target}"
    if target == 1:
        layer.attrs.pop("batch_dims", None)
    return f"Gather-{target}{note}"


def softmax(ctx: PatchContext, layer) -> str:
    """SoftMax-8 -> SoftMax-1: the axis is made non-negative."""
    rank = len(input_of(ctx.model, layer, 0).dims)
    axis = int(layer.attrs.get("axis", "1"))
    if not -rank <= axis < rank:
        raise Refuse(f"axis {axis} is out of range for rank {rank}")
    layer.attrs["axis"] = str(axis % rank)
    layer.version = "opset1"
    return f"SoftMax-1 axis={axis % rank}"


def max_pool(ctx: PatchContext, layer) -> str:
    """MaxPool-8 -> MaxPool-1 when the indices output is unused and dilations are all 1."""
    model = ctx.model
    dilations = [int(d) for d in layer.attrs.get("dilations", "1").split(",") if d.strip()]
    if any(d != 1 for d in dilations):
        raise Refuse(f"dilations {dilations}: MaxPool-1 has no dilation")
    if len(layer.outputs) > 1 and not unused(model, layer, 1):
        raise Refuse("the indices output is used; MaxPool-1 has none")
    keep = ("strides", "pads_begin", "pads_end", "kernel", "rounding_type", "auto_pad")
    attrs = {k: v for k, v in layer.attrs.items() if k in keep}
    data = input_of(model, layer, 0)
    new = add_op(model, "MaxPool", "opset1", f"{layer.name}/v1", [data], attrs,
                 outputs=[(layer.outputs[0].precision, layer.outputs[0].dims)])
    replace(model, layer, out(new))
    return "MaxPool-1"


def slice_(ctx: PatchContext, layer) -> str:
    """Slice-8 -> StridedSlice-1 over all axes (untouched axes are masked to their full range)."""
    model = ctx.model
    data = input_of(model, layer, 0)
    rank = len(data.dims)
    values = [constant_input(model, layer, i) for i in range(1, len(layer.inputs))]
    if any(v is None for v in values):
        raise Refuse("start, stop, step and axes must be constants")
    start, stop, step = (np.asarray(v).reshape(-1).astype(np.int64) for v in values[:3])
    axes = np.asarray(values[3]).reshape(-1).astype(np.int64) if len(values) > 3 else np.arange(len(start))
    begin, end, strides = [0] * rank, [0] * rank, [1] * rank
    begin_mask, end_mask = [1] * rank, [1] * rank
    for a, b, e, s in zip(axes, start, stop, step):
        a = int(a) % rank
        if s == 0:
            raise Refuse(f"step 0 on axis {a}")
        if data.dims[a] < 0:
            raise Refuse(f"axis {a} of the sliced data has a dynamic length; give its shape with --input-shape")
        # Python slice semantics are Slice-8's; normalise them so StridedSlice sees in-range values.
        lo, hi, st = slice(int(b), int(e), int(s)).indices(data.dims[a])
        begin[a], strides[a], begin_mask[a] = lo, st, 0
        if st < 0 and hi < 0:
            end_mask[a] = 1          # runs down to element 0 inclusive
        else:
            end[a], end_mask[a] = hi, 0
    consts = [add_const(model, np.array(v, np.int64), f"{layer.name}/{n}")
              for n, v in (("begin", begin), ("end", end), ("strides", strides))]
    attrs = {"begin_mask": ",".join(map(str, begin_mask)), "end_mask": ",".join(map(str, end_mask)),
             "new_axis_mask": "", "shrink_axis_mask": "", "ellipsis_mask": ""}
    new = add_op(model, "StridedSlice", "opset1", f"{layer.name}/v1", [data] + consts, attrs,
                 outputs=[(layer.outputs[0].precision, layer.outputs[0].dims)])
    replace(model, layer, out(new))
    return "StridedSlice-1"


def interpolate(ctx: PatchContext, layer) -> str:
    """Interpolate-11 -> Interpolate-4: v4 takes sizes and scales as two inputs."""
    model = ctx.model
    mode = layer.attrs.get("mode", "nearest")
    if mode in ("bilinear_pillow", "bicubic_pillow"):
        raise Refuse(f"mode {mode} does not exist in Interpolate-4")
    data = input_of(model, layer, 0)
    rank = len(data.dims)
    given = constant_input(model, layer, 1)
    if given is None:
        raise Refuse("scales_or_sizes must be constant")
    if len(layer.inputs) > 2:
        axes_value = constant_input(model, layer, 2)
        if axes_value is None:
            raise Refuse("axes must be constant")
        axes = [int(a) % rank for a in np.asarray(axes_value).reshape(-1)]
    else:
        axes = list(range(rank))
    out_dims = layer.outputs[0].dims
    by_sizes = layer.attrs.get("shape_calculation_mode", "sizes") == "sizes"
    if by_sizes:
        sizes = np.asarray(given).reshape(-1).astype(np.int64)
        scales = np.array([sizes[i] / data.dims[a] for i, a in enumerate(axes)], np.float32)
    else:
        scales = np.asarray(given).reshape(-1).astype(np.float32)
        sizes = np.array([out_dims[a] for a in axes], np.int64)
    inputs = [data, add_const(model, sizes, f"{layer.name}/sizes"), add_const(model, scales, f"{layer.name}/scales"),
              add_const(model, np.array(axes, np.int64), f"{layer.name}/axes")]
    attrs = dict(layer.attrs.items())
    attrs.setdefault("shape_calculation_mode", "sizes")
    attrs.setdefault("pads_begin", "0")
    attrs.setdefault("pads_end", "0")
    attrs.setdefault("antialias", "false")
    attrs.setdefault("cube_coeff", "-0.75")
    attrs.setdefault("coordinate_transformation_mode", "half_pixel")
    attrs.setdefault("nearest_mode", "round_prefer_floor")
    new = add_op(model, "Interpolate", "opset4", f"{layer.name}/v4", inputs, attrs,
                 outputs=[(layer.outputs[0].precision, out_dims)])
    replace(model, layer, out(new))
    return "Interpolate-4"


def topk(ctx: PatchContext, layer) -> str:
    """TopK-11 -> TopK-3: `stable` is dropped (v3 does not promise an order among equal values)."""
    stable = layer.attrs.pop("stable", "false").lower() == "true"
    layer.version = "opset3"
    return "TopK-3" + (" (stable=true dropped: ties may come out in another order)" if stable else "")


def pad(ctx: PatchContext, layer) -> str:
    """Pad-12 -> Pad-1 when no pad is negative (v12's negative pads crop; v1 has no crop)."""
    for index, what in ((1, "pads_begin"), (2, "pads_end")):
        value = constant_input(ctx.model, layer, index)
        if value is None:
            raise Refuse(f"{what} must be constant to prove it is not negative")
        if (np.asarray(value) < 0).any():
            raise Refuse(f"{what} {np.asarray(value).tolist()} is negative (a crop), which Pad-1 cannot express")
    layer.version = "opset1"
    return "Pad-1"


def nms(ctx: PatchContext, layer) -> str:
    """NMS-9 -> NMS-5: same inputs, attributes and outputs."""
    layer.version = "opset5"
    return "NonMaxSuppression-5"


def scatter_elements(ctx: PatchContext, layer) -> str:
    """ScatterElementsUpdate-12 -> -3 when reduction is none."""
    reduction = layer.attrs.get("reduction", "none")
    if reduction != "none":
        raise Refuse(f"reduction={reduction} does not exist in ScatterElementsUpdate-3")
    layer.attrs.pop("reduction", None)
    layer.attrs.pop("use_init_val", None)
    layer.version = "opset3"
    return "ScatterElementsUpdate-3"


def scatter_nd(ctx: PatchContext, layer) -> str:
    """ScatterNDUpdate-15 -> -3 (defined in opset4) when reduction is none (v15 only adds the reductions)."""
    reduction = layer.attrs.get("reduction", "none")
    if reduction != "none":
        raise Refuse(f"reduction={reduction} does not exist in ScatterNDUpdate-3")
    layer.attrs.pop("reduction", None)
    layer.version = "opset4"
    return "ScatterNDUpdate-3 (opset4)"


def one_hot(ctx: PatchContext, layer) -> str:
    """OneHot-16 -> OneHot-1. v1 gives negative indices an all-off row; v16's negative_indices_mode
    "normalize" counts them from the end, which a Select(indices < 0, indices + depth, indices) restores."""
    from kernelkit.ir.graph import op, scalar_like

    model = ctx.model
    mode = layer.attrs.get("negative_indices_mode", "ignore_negative")
    note = ""
    if mode == "normalize":
        depth = constant_input(model, layer, 1)
        if depth is None or np.size(depth) != 1:
            found = model.producer(layer, layer.inputs[1].id) if len(layer.inputs) > 1 else None
            while found is not None and found[0].type == "Convert":
                found = model.producer(found[0], found[0].inputs[0].id)
            if found is not None and found[0].type == "Parameter":
                raise Refuse(f"depth is the network input {found[0].name!r}, known only at run time; it sets the "
                             f"output's width and counts negative indices from the end: freeze it with "
                             f"--input-value {found[0].name}=N")
            raise Refuse("depth must be a constant scalar to normalise negative indices")
        indices = input_of(model, layer, 0)
        name = layer.name
        negative = op(model, "Less", f"{name}/negative", [indices, scalar_like(model, indices, 0, f"{name}/zero")],
                      {"auto_broadcast": "numpy"})
        shifted = op(model, "Add", f"{name}/from_end",
                     [indices, scalar_like(model, indices, int(np.asarray(depth).reshape(())), f"{name}/depth")],
                     {"auto_broadcast": "numpy"})
        fixed = op(model, "Select", f"{name}/normalised", [negative, shifted, indices], {"auto_broadcast": "numpy"})
        model.disconnect(model.input_edge(layer, layer.inputs[0].id))
        model.connect(fixed.layer, fixed.port.id, layer, layer.inputs[0].id)
        note = " (negative indices normalised with Select)"
    layer.attrs.pop("negative_indices_mode", None)
    layer.version = "opset1"
    return "OneHot-1" + note


# (type lower case, opset of the new version) -> (downgrade, opset it lands in)
DOWNGRADES = {
    ("gather", 8): (gather, 7),
    ("softmax", 8): (softmax, 1),
    ("maxpool", 8): (max_pool, 1),
    ("slice", 8): (slice_, 1),
    ("interpolate", 11): (interpolate, 4),
    ("topk", 11): (topk, 3),
    ("pad", 12): (pad, 1),
    ("nonmaxsuppression", 9): (nms, 5),
    ("scatterelementsupdate", 12): (scatter_elements, 3),
    ("onehot", 16): (one_hot, 1),
    ("scatterndupdate", 15): (scatter_nd, 4),
}


def too_new(layer, target: Target) -> bool:
    number = opset_number(layer)
    return number is not None and number > target.opset_ceiling


def describe_fix(layer, target: Target) -> str | None:
    entry = DOWNGRADES.get((layer.type.lower(), opset_number(layer)))
    if entry and too_new(layer, target) and entry[1] <= target.opset_ceiling:
        return f"downgrade to {layer.type}-{entry[1] if layer.type.lower() != 'gather' else min(7, target.opset_ceiling)}"
    return None


def apply(ctx: PatchContext) -> None:
    """Downgrade every op newer than the target's opset ceiling; refuse the rest with a reason."""
    for layer in list(ctx.model.topological_order()):
        if not too_new(layer, ctx.target):
            continue
        before, name = describe(layer), layer.name
        entry = DOWNGRADES.get((layer.type.lower(), opset_number(layer)))
        if entry is None:
            ctx.refuse(NAME, layer, f"no older version of {layer.type} exists in opset{ctx.target.opset_ceiling}"
                       f" or below for MYRIAD {ctx.target.name}")
            continue
        try:
            after = entry[0](ctx, layer)
        except Refuse as why:
            ctx.refuse(NAME, layer, str(why))
            continue
        ctx.record(NAME, name, before, after)


# ---- IR v11 -> v10 (notes §1.9) ---------------------------------------------------------------------------

def _output_name(result) -> str | None:
    """The output name a v11 Result carries (`output_names`, its first one), None when it has none."""
    text = result.element.get("output_names") or ""
    found = re.split(r"(?<!\\),", text)[0].replace("\\,", ",").strip()
    return found or None


def _name_outputs(ctx: PatchContext) -> None:
    """IR v10 names an output after the layer that feeds its Result. A Result fed straight by an input (an
    ONNX Identity, Dropout or one-input Max the conversion removed), or by a layer that feeds another Result
    too, would be named after that layer (a blob output 'x' for the user's 'y'), and OpenVINO refuses the
    model ("tensor names have collisions"). A Convert to the same type, named after the output, feeds such a
    Result; the plugin drops it (no stage), so the blob is the same with the user's name on its output."""
    model = ctx.model
    for result in model.results():
        name = _output_name(result)
        value = input_of(model, result, 0)
        producer = value.layer
        if name is None or name == producer.name:
            continue
        shared = sum(1 for layer, _ in model.consumers(producer, value.port.id) if layer.type == "Result") > 1
        if producer.type != "Parameter" and not shared:
            continue
        if model.find(name) is not None:
            ctx.refuse("ir", result, f"output {name!r} is read straight from {producer.name!r}, and another layer "
                                     f"has the name {name!r}: the blob's output would not be named {name!r}")
            continue
        element_type = value.port.element_type
        named = add_op(model, "Convert", "opset1", name, [value], {"destination_type": element_type},
                       unique=False)
        model.disconnect(model.input_edge(result, result.inputs[0].id))
        model.connect(named, named.outputs[0].id, result, result.inputs[0].id)
        value.port.names = [n for n in value.port.names if n != name]
        named.outputs[0].names = [name]
        ctx.record("ir", name, f"output {name!r} read straight from {producer.name!r}",
                   f"Convert to {element_type} named {name!r}, so the output keeps its name")


def to_ir_v10(ctx: PatchContext) -> bool:
    """Write what the 2021.4 reader accepts: header 10, no rt_info, no Result output_names, unique layer
    names. A dynamic or zero dimension, or an element type the old reader lacks, keeps the model at v11
    (recorded as a refusal; find_blockers then names the layer and what to do). Returns whether the model is
    now v10."""
    model = ctx.model
    if model.version == 10:
        return True
    obstacle = v10_obstacle(model)
    if obstacle is not None:
        layer, port, why = obstacle
        todo = (" (pass --input-shape NAME=D0,D1,... for dynamic inputs)" if any(d < 0 for d in port.dims)
                else "")
        ctx.refuse("ir", layer, f"{why}; the 2021.4 reader needs static positive shapes of the types it "
                                f"knows{todo}")
        return False
    _name_outputs(ctx)
    for element in list(model.root.iter("rt_info")):
        element.getparent().remove(element)
    seen: set[str] = set()
    for layer in model.layers:
        layer.element.attrib.pop("output_names", None)
        if layer.name in seen:
            old = layer.name
            layer.name = model.unique_name(old)
            ctx.record(NAME, old, "duplicate layer name", f"renamed to {layer.name}")
        seen.add(layer.name)
    model.version = 10
    ctx.record("ir", model.name or "model", "IR v11", "IR v10 (rt_info and output_names dropped)")
    return True
