"""ONNX Resize attributes OpenVINO's ONNX frontend drops, made explicit on the ONNX graph before conversion.

OpenVINO (2026's frontend, the 2021.4 reader alike) turns Resize-18/19 into an Interpolate that ignores
`keep_aspect_ratio_policy` (the frozen `sizes` become the output shape) and computes `antialias` as a plain
interpolation (measured: OpenVINO CPU and the MYRIAD Interp stage both give the unfiltered result). Both
change what the model computes, so a Resize that uses them is rewritten here while its input shape and its
sizes/scales are static:

- `keep_aspect_ratio_policy` not_larger / not_smaller: one scale (the min / max of sizes / input over the
  resized axes), output = round_half_up(scale * input) per axis (the ONNX spec). An axis whose output / input
  equals that scale is a plain Resize by sizes (stretch);
- an axis that is not (the rounded size differs from scale * input) or an antialiased downscale is a fixed
  linear map of that axis: its weights are measured with onnx's reference evaluator on unit vectors (the
  same Resize node, so the spec's own arithmetic) and applied as a MatMul by the constant matrix, or a Gather
  when every output sample copies one input sample (nearest).

A Resize that needs it but cannot be rewritten (a shape or size known only at run time, an integer input
that would need a weighted sum, a matrix over the size limit) is reported, never converted silently.
"""

from __future__ import annotations

import math

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.onnx_graph import DEFAULT_DOMAINS, node_label

MAX_MATRIX = 1 << 20        # entries of one axis's weight matrix
MAX_PROBE = 1 << 24         # elements of the reference evaluator's probe input for one axis


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def dropped_attributes(node) -> list[str]:
    """The attributes of this Resize that OpenVINO's conversion would lose ([] when none)."""
    if node.op_type != "Resize" or node.domain not in DEFAULT_DOMAINS:
        return []
    attrs = _attrs(node)
    found = []
    sizes_given = len(node.input) > 3 and node.input[3]
    if sizes_given and _text(attrs.get("keep_aspect_ratio_policy"), "stretch") != "stretch":
        found.append(f"keep_aspect_ratio_policy={_text(attrs['keep_aspect_ratio_policy'], '')}")
    if int(attrs.get("antialias", 0) or 0) and _text(attrs.get("mode"), "nearest") in ("linear", "cubic"):
        found.append("antialias=1")
    return found


def has_dropped_attributes(model) -> bool:
    return any(dropped_attributes(n) for n in model.graph.node)


class _Unfixable(Exception):
    """Why a Resize cannot be rewritten; `dynamic`: a shape or size known only at run time, which the
    converted model's dynamic-shape blocker reports with its fix."""

    def __init__(self, reason: str, dynamic: bool = False):
        super().__init__(reason)
        self.dynamic = dynamic


def rewrite_resizes(model, log, shapes=None, path=None) -> None:
    """Rewrite, in place, every top-level Resize of ONNX `model` whose attributes OpenVINO would drop; each
    rewrite goes to log.changes (a FoldLog). One that cannot be rewritten while its shapes are unknown goes
    to log.refusals (the converted model keeps a dynamic shape, a blocker with its fix); with static shapes
    it is a KernelkitError, since the conversion would compute something else without a trace."""
    if not has_dropped_attributes(model):
        return
    from kernelkit.ir.onnx_graph import infer_shapes

    shapes = infer_shapes(model) if shapes is None else shapes
    types = _element_types(model)
    consts = _constants(model.graph)
    names = {o for n in model.graph.node for o in n.output} | {n.name for n in model.graph.node} | \
        {t.name for t in model.graph.initializer} | {i.name for i in model.graph.input}
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 1)
    kept = []
    for node in model.graph.node:
        dropped = dropped_attributes(node)
        if not dropped:
            kept.append(node)
            continue
        label = node_label(node)
        try:
            nodes, initializers, what = _rewrite(node, shapes, types, consts, names, opset)
        except _Unfixable as why:
            text = f"{' and '.join(dropped)}, which OpenVINO's conversion drops (the result would differ from the " \
                   f"model's): {why}"
            if not why.dynamic:
                raise KernelkitError(f"Resize {label!r}: {text}", path=str(path) if path is not None else None,
                                     where=f"node {label!r}",
                                     hint="replace this Resize in the source model (a Resize by sizes without "
                                          "the attribute, with the output size the spec gives)") from None
            log.refusals.append((label, "Resize", text))
            kept.append(node)
            continue
        model.graph.initializer.extend(initializers)
        kept.extend(nodes)
        log.changes.append((label, f"Resize ({', '.join(dropped)})", what))
    del model.graph.node[:]
    model.graph.node.extend(kept)


def _constants(graph) -> dict:
    from onnx import numpy_helper

    found = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS and node.output:
            attrs = {a.name: a for a in node.attribute}
            if "value" in attrs:
                found[node.output[0]] = attrs["value"].t
    return {name: numpy_helper.to_array(t) for name, t in found.items()}


def _axis_plan(node, dims, consts, attrs):
    """Per resized axis (scale, output size) as the ONNX spec computes them, and the limiting axis of a
    keep_aspect_ratio_policy (None without)."""
    rank = len(dims)
    axes = [int(a) % rank for a in attrs.get("axes", [])] or list(range(rank))
    sizes_name = node.input[3] if len(node.input) > 3 else ""
    scales_name = node.input[2] if len(node.input) > 2 else ""
    policy = _text(attrs.get("keep_aspect_ratio_policy"), "stretch")
    if sizes_name:
        if sizes_name not in consts:
            raise _Unfixable(f"its sizes ({sizes_name!r}) are computed at run time: freeze them with "
                             f"--input-value or make them a constant", dynamic=True)
        sizes = [int(v) for v in np.asarray(consts[sizes_name]).reshape(-1)]
        if len(sizes) != len(axes):
            raise _Unfixable(f"{len(sizes)} sizes for {len(axes)} axes")
        ratios = [s / dims[a] for s, a in zip(sizes, axes)]
        if policy == "stretch":
            return axes, {a: (r, s) for a, r, s in zip(axes, ratios, sizes)}, None, sizes
        if policy not in ("not_larger", "not_smaller"):
            raise _Unfixable(f"keep_aspect_ratio_policy {policy!r} is not one the spec defines")
        scale = min(ratios) if policy == "not_larger" else max(ratios)
        limiting = axes[ratios.index(scale)]
        return axes, {a: (scale, int(scale * dims[a] + 0.5)) for a in axes}, limiting, sizes
    if not scales_name or scales_name not in consts:
        raise _Unfixable("its scales are computed at run time: freeze them with --input-value or make them a "
                         "constant", dynamic=True)
    scales = [float(v) for v in np.asarray(consts[scales_name], np.float32).reshape(-1)]
    if len(scales) != len(axes):
        raise _Unfixable(f"{len(scales)} scales for {len(axes)} axes")
    return axes, {a: (s, int(s * dims[a])) for a, s in zip(axes, scales)}, None, None


def _element_types(model) -> dict:
    """Tensor name -> numpy dtype, from onnx shape inference (what it cannot type is absent)."""
    import onnx

    from kernelkit.ir.onnx_graph import numpy_type

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:          # noqa: BLE001 - an untyped model: nothing known
        inferred = model
    graph = inferred.graph
    found = {t.name: numpy_type(t.data_type)[0] for t in graph.initializer}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        if info.type.HasField("tensor_type"):
            found[info.name] = numpy_type(info.type.tensor_type.elem_type)[0]
    return {k: v for k, v in found.items() if v is not None}


def _rewrite(node, shapes, types, consts, names, opset):
    from onnx import helper, numpy_helper

    attrs = _attrs(node)
    dims = shapes.get(node.input[0])
    if not dims or any(not isinstance(d, int) or d <= 0 for d in dims):
        raise _Unfixable("its input's shape is not static: give it with --input-shape", dynamic=True)
    axes, plan, limiting, sizes = _axis_plan(node, dims, consts, attrs)
    mode = _text(attrs.get("mode"), "nearest")
    antialias = bool(int(attrs.get("antialias", 0) or 0)) and mode in ("linear", "cubic")
    if any(m <= 0 for _, m in plan.values()):
        raise _Unfixable("an output dimension would be zero")
    roi_name = node.input[1] if len(node.input) > 1 else ""
    roi = np.asarray(consts[roi_name], np.float64).reshape(-1) if roi_name and roi_name in consts else None
    ctm = _text(attrs.get("coordinate_transformation_mode"), "half_pixel")
    if ctm == "tf_crop_and_resize" and roi is None:
        raise _Unfixable("tf_crop_and_resize needs a constant roi")
    cropped = set()
    if ctm == "tf_crop_and_resize":
        full_roi = _full_roi(roi, axes, len(dims), axes)
        cropped = {a for a in axes if (full_roi[a], full_roi[len(dims) + a]) != (0.0, 1.0)}
    matrix_axes, native_axes = [], []
    for a in axes:
        scale, m = plan[a]
        n = dims[a]
        if antialias and scale < 1:
            matrix_axes.append(a)               # the antialias filter: OpenVINO computes it unfiltered
        elif limiting is not None and scale != m / n:
            matrix_axes.append(a)               # a stretch by sizes would map coordinates by m / n, not scale
        elif m != n or not math.isclose(scale, 1.0) or a in cropped:
            native_axes.append(a)
    out_name = node.output[0]
    label = node.name or out_name

    def fresh(tag: str) -> str:
        base = f"{label}/{tag}"
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.add(name)                         # shared by every Resize of the model: no name made twice
        return name

    measured = {a: _axis_weights(attrs, dims, a, plan, limiting, sizes, axes, roi, opset) for a in matrix_axes}
    # An axis the policy's scale leaves as it is (nearest, same length) needs no node.
    matrix_axes = [a for a in matrix_axes
                   if not (measured[a].shape[0] == measured[a].shape[1]
                           and np.array_equal(measured[a], np.eye(len(measured[a]))))]
    nodes, initializers, parts = [], [], []
    current = node.input[0]
    steps = len(matrix_axes) + (1 if native_axes else 0)
    if native_axes:
        # One Resize by sizes (stretch) over the axes whose spec scale is output / input; the matrix axes keep
        # their length here (scale 1, roi 0..1: no change along them).
        full = [plan[a][1] if a in native_axes else dims[a] for a in range(len(dims))]
        sizes_init = fresh("sizes")
        initializers.append(numpy_helper.from_array(np.array(full, np.int64), sizes_init))
        inputs = [current, "", "", sizes_init]
        if ctm == "tf_crop_and_resize":
            roi_full = _full_roi(roi, axes, len(dims), native_axes)
            roi_init = fresh("roi")
            initializers.append(numpy_helper.from_array(roi_full.astype(np.float32), roi_init))
            inputs[1] = roi_init
        new_attrs = {k: v for k, v in attrs.items() if k not in ("keep_aspect_ratio_policy", "antialias", "axes")}
        steps -= 1
        output = out_name if steps == 0 else fresh("resized")
        nodes.append(helper.make_node("Resize", inputs, [output], name=fresh("stretch"), **new_attrs))
        parts.append(f"Resize by sizes {[plan[a][1] for a in native_axes]} on axes {native_axes}")
        current = output
    for a in matrix_axes:
        weights = measured[a]
        steps -= 1
        output = out_name if steps == 0 else fresh(f"axis{a}")
        selection = _selection(weights)
        if selection is not None:
            index = fresh(f"axis{a}/index")
            initializers.append(numpy_helper.from_array(selection, index))
            nodes.append(helper.make_node("Gather", [current, index], [output], name=fresh(f"axis{a}/gather"),
                                          axis=a))
            parts.append(f"axis {a}: Gather of {len(selection)} samples")
        else:
            dtype = types.get(node.input[0], np.dtype(np.float32))
            if dtype.kind != "f":
                raise _Unfixable(f"axis {a} needs a weighted sum of samples, and the input is {dtype.name}")
            matrix = fresh(f"axis{a}/weights")
            initializers.append(numpy_helper.from_array(weights.astype(dtype), matrix))
            nodes += _matmul_on_axis(current, matrix, output, a, len(dims), fresh)
            parts.append(f"axis {a}: MatMul by its constant {weights.shape[0]}x{weights.shape[1]} weights")
        current = output
    if not nodes:                               # no axis changes: the policy's output is the input
        nodes.append(helper.make_node("Identity", [current], [out_name], name=fresh("identity")))
        parts.append("Identity (no axis changes)")
    return nodes, initializers, "; ".join(parts)


def _full_roi(roi, axes, rank, only):
    """The roi over every axis (start..., end...) from one over `axes`, reset to 0..1 outside `only`."""
    full = np.concatenate([np.zeros(rank), np.ones(rank)])
    given = roi.reshape(-1)
    count = len(axes)
    if given.size == 2 * rank:
        starts, ends = given[:rank][axes], given[rank:][axes]
    else:
        starts, ends = given[:count], given[count:]
    for i, a in enumerate(axes):
        if a in only:
            full[a], full[rank + a] = starts[i], ends[i]
    return full


def _axis_weights(attrs, dims, axis, plan, limiting, sizes, axes, roi, opset) -> np.ndarray:
    """[n, m] weights of the Resize along `axis` (out = in @ W), measured with onnx's reference evaluator on
    the n unit vectors, the node's own attributes kept. Under a keep_aspect_ratio_policy the probe also
    holds the limiting axis (its length and size divided by their gcd: the same ratio to the last bit), so
    the policy picks the same scale and the axis gets the same output size."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    n, m = dims[axis], plan[axis][1]
    if n * m > MAX_MATRIX:
        raise _Unfixable(f"axis {axis}: a {n}x{m} weight matrix is over the limit of {MAX_MATRIX} entries")
    probe_attrs = {k: v for k, v in attrs.items() if k not in ("axes",)}
    position = axes.index(axis)
    helper_len = helper_size = None
    if limiting is not None and limiting != axis:
        j = axes.index(limiting)
        g = math.gcd(dims[limiting], sizes[j])
        helper_len, helper_size = dims[limiting] // g, sizes[j] // g
    shape = [n, n] + ([helper_len] if helper_len else [])
    if math.prod(shape) > MAX_PROBE:
        raise _Unfixable(f"axis {axis}: measuring its weights needs a probe of {math.prod(shape)} elements, over "
                         f"the limit of {MAX_PROBE}")
    probe = np.zeros(shape, np.float64)
    probe[np.arange(n), np.arange(n)] = 1
    probe_axes = [1, 2] if helper_len else [1]
    feeds = {"X": probe}
    inputs = ["X", "", "", ""]
    if sizes is not None:
        feeds["sizes"] = np.array([sizes[position]] + ([helper_size] if helper_len else []), np.int64)
        inputs[3] = "sizes"
    else:
        feeds["scales"] = np.array([plan[axis][0]], np.float32)
        inputs[2] = "scales"
    if roi is not None and _text(attrs.get("coordinate_transformation_mode"), "") == "tf_crop_and_resize":
        full = _full_roi(roi, axes, len(dims), [axis])
        starts, ends = [full[axis]], [full[len(dims) + axis]]
        if helper_len:
            starts, ends = starts + [0.0], ends + [1.0]
        feeds["roi"] = np.array(starts + ends, np.float32)
        inputs[1] = "roi"
    probe_attrs["axes"] = probe_axes
    probe_node = helper.make_node("Resize", inputs, ["Y"], **probe_attrs)
    graph_inputs = [helper.make_tensor_value_info(k, {np.dtype(np.float64): TensorProto.DOUBLE,
                                                      np.dtype(np.float32): TensorProto.FLOAT,
                                                      np.dtype(np.int64): TensorProto.INT64}[v.dtype], v.shape)
                    for k, v in feeds.items()]
    graph = helper.make_graph([probe_node], "probe", graph_inputs,
                              [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, None)])
    try:
        result = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(opset, 18))])).run(
            None, feeds)[0]
    except Exception as exc:     # noqa: BLE001 - an attribute the reference evaluator refuses
        raise _Unfixable(f"onnx's reference evaluator cannot measure axis {axis} ({exc})") from None
    weights = np.asarray(result)
    if helper_len:
        weights = weights[:, :, 0]
    if weights.shape != (n, m):
        raise _Unfixable(f"axis {axis}: the measured map has shape {list(weights.shape)}, expected [{n}, {m}]")
    return weights


def _selection(weights: np.ndarray):
    """The input index each output copies, when every column is one 1 and zeros (nearest); else None."""
    ones = weights == 1.0
    if np.all(ones | (weights == 0.0)) and np.all(ones.sum(axis=0) == 1):
        return np.argmax(ones, axis=0).astype(np.int64)
    return None


def _matmul_on_axis(source: str, matrix: str, output: str, axis: int, rank: int, fresh):
    """`source` @ matrix along `axis`: a MatMul on the last axis, the axis moved there and back otherwise."""
    from onnx import helper

    last = rank - 1
    if axis == last:
        return [helper.make_node("MatMul", [source, matrix], [output], name=fresh(f"axis{axis}/matmul"))]
    order = [i for i in range(rank) if i != axis] + [axis]
    back = [order.index(i) for i in range(rank)]
    moved, product = fresh(f"axis{axis}/moved"), fresh(f"axis{axis}/product")
    return [helper.make_node("Transpose", [source], [moved], name=fresh(f"axis{axis}/to_last"), perm=order),
            helper.make_node("MatMul", [moved, matrix], [product], name=fresh(f"axis{axis}/matmul")),
            helper.make_node("Transpose", [product], [output], name=fresh(f"axis{axis}/back"), perm=back)]
