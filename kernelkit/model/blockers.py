"""Find every reason the MYRIAD plugin of a target release would refuse a model (the knowledge base applied).

Model-level blockers (IR version) carry an empty layer_id. The element type flowing into an input port is
the producer's output port precision, as the plugin sees it after its own conversions (FP32 -> FP16,
i64/u64/u32/boolean -> S32).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from kernelkit.facts.knowledge import Knowledge, load_knowledge
from kernelkit.facts.op_kinds import DATA_DEPENDENT_LENGTH_OPS
from kernelkit.facts.target import Target, get_target
from kernelkit.ir.graph import Out, constant_input, constant_source, folded_constant, input_of, pool_window_pads
from kernelkit.ir.model import v10_obstacle

KINDS = ("ir-version", "opset", "unsupported", "limit", "precision", "dynamic-shape", "dtype")


@dataclass
class Blocker:
    layer_id: str
    layer_name: str
    type: str
    version: str
    kind: str           # one of KINDS
    reason: str
    source: str
    details: dict = field(default_factory=dict)    # e.g. {"port": "1", "found": "S32", "accepts": ["FP16"]}

    def to_dict(self) -> dict:
        return asdict(self)


def _blocker(layer, kind, reason, source, **details) -> Blocker:
    return Blocker(layer.id, layer.name, layer.type, layer.version, kind, reason, source, details)


def find_blockers(model, target: Target | str, *, custom_types=None) -> list[Blocker]:
    """Every blocker of `model` (a kernelkit.ir.model.IRModel) for `target`, model-level first, then in XML order.

    custom_types: op types bound to custom OpenCL kernels (names, or objects with `.name` such as
    bindings CustomLayer). A binding replaces the plugin's implementation of that type, so support,
    limit and precision rules do not apply to it; the IR reader must still know the op version.
    """
    target = get_target(target)
    kb = load_knowledge(target.name)
    custom = {getattr(c, "name", c).lower() for c in (custom_types or ())}
    blockers: list[Blocker] = []
    if model.version not in kb.ir_versions:
        blockers.append(_version_blocker(model, target, kb))
    names_seen: dict[str, str] = {}
    for layer in model.layers:
        if kb.unique_layer_names:
            if layer.name in names_seen:
                blockers.append(_blocker(layer, "ir-version",
                                         f"layer name {layer.name!r} is also used by layer "
                                         f"{names_seen[layer.name]}; the {target.name} IR reader requires unique names",
                                         kb.sources["reader"]))
            names_seen.setdefault(layer.name, layer.id)
        blockers.extend(_layer_blockers(model, layer, kb, custom))
    return blockers


def _version_blocker(model, target: Target, kb: Knowledge) -> Blocker:
    """The IR version the reader cannot read: model-level when patch writes the version the reader takes; else
    on the layer that keeps the model at its version (a dynamic dim, an element type the reader lacks), with
    what to do about it."""
    reason = (f"IR v{model.version} cannot be read by the {target.name} IR reader "
              f"(it reads v{', v'.join(map(str, kb.ir_versions))})")
    obstacle = v10_obstacle(model) if 10 in kb.ir_versions else None
    if obstacle is None:
        return Blocker("", "", "", "", "ir-version", reason, kb.sources["ir-version"])
    layer, port, why = obstacle
    return _blocker(layer, "ir-version", f"{reason}, and layer {layer.name!r} ({layer.type}) keeps it at "
                                         f"v{model.version}: its {why}; {_v10_todo(model, layer, port)}",
                    kb.sources["reader"], port=port.id, keeps_version=True,
                    **({} if any(d <= 0 for d in port.dims) else {"element_type": port.element_type}))


def _v10_todo(model, layer, port) -> str:
    """What makes the port fit an IR v10 file."""
    if not any(d < 0 for d in port.dims):
        if any(d == 0 for d in port.dims):
            if layer.type == "Parameter":
                return (f"input {layer.name!r} has shape {port.dims}, which holds no element; the reader and the "
                        f"device take no empty tensor: give it a shape with elements, --input-shape "
                        f"{layer.name}=D0,D1,...")
            return (f"shape {port.dims} holds no element, and the reader and the device take no empty tensor: when "
                    f"--input-value made it empty, other values may not; else end the model before it with --output")
        return "the reader needs a type it knows there (f32, f16, i32, i64, u8, boolean; patch retypes the ones it can)"
    if layer.type == "Parameter":
        return f"fix it with --input-shape {layer.name}=D0,D1,..."
    dynamic = [p.name for p in model.parameters() if any(d < 0 for d in (p.outputs[0].dims if p.outputs else []))]
    if dynamic:
        return f"it follows from the dynamic input{'s' if len(dynamic) > 1 else ''} " \
               f"{', '.join(map(repr, dynamic))}: fix {'them' if len(dynamic) > 1 else 'it'} with " \
               f"--input-shape NAME=D0,D1,..."
    inputs = shape_inputs(model, layer)
    if inputs:
        return f"it is computed from the integer input{'s' if len(inputs) > 1 else ''} " \
               f"{', '.join(repr(p.name) for p in inputs)}: freeze {'them' if len(inputs) > 1 else 'it'} " \
               f"with --input-value NAME=V0,V1,..."
    return ("its size depends on the data, which the plugin sizes by a bound only for NonZero and "
            "NonMaxSuppression: end the model before it with --output NAME (a tensor that feeds it) and run that "
            "part on the host")


def _layer_blockers(model, layer, kb: Knowledge, custom: set[str]) -> list[Blocker]:
    found: list[Blocker] = []
    op_type = kb.canonical(layer.type)
    lowered = layer.type.lower()
    opset = kb.opset_number(layer.version)
    too_new = opset is not None and opset > kb.opset_ceiling
    if too_new:
        found.append(_blocker(layer, "opset",
                              f"{op_type}-{opset} (opset{opset}) is newer than the {kb.target} IR reader, "
                              f"which knows opset1..opset{kb.opset_ceiling}", kb.sources["opset"]))
    found.extend(_shape_blockers(model, layer, kb))
    found.extend(_dtype_blockers(layer, kb))
    if lowered in custom:
        return found
    rule = kb.op_rule(layer.type)
    if rule is None or not rule.supported:
        how = "is not in the MYRIAD plugin's parser table" if rule is None else "is not supported by MYRIAD"
        if opset is None and rule is None:
            how = f"is a custom op (version {layer.version!r}) without a MYRIAD custom-layer binding"
        found.append(_blocker(layer, "unsupported", f"{layer.type} {how} ({kb.target})",
                              rule.source if rule else "ref §2.2 (parser table); ops.toml has no row"))
        return found
    if rule.versions and opset is not None and not too_new and opset not in rule.versions:
        found.append(_blocker(layer, "unsupported",
                              f"MYRIAD handles {op_type} versions {', '.join(map(str, rule.versions))}, "
                              f"not {opset}", rule.source))
    for limit in kb.limits.get(op_type, ()):
        problem = _CHECKS[limit.check](model, layer, limit.params)
        if problem:
            found.append(_blocker(layer, "limit", f"{limit.reason} ({problem})", limit.source,
                                  check=limit.check))
    found.extend(_precision_blockers(model, layer, op_type, kb))
    return found


def _shape_blockers(model, layer, kb: Knowledge) -> list[Blocker]:
    if layer.type == "Parameter":
        dims = layer.outputs[0].dims if layer.outputs else []
        shape_attr = layer.attrs.get("shape", "")
        if any(d < 0 for d in dims) or any(t.strip() in ("?", "-1") or ".." in t for t in shape_attr.split(",")):
            return [_blocker(layer, "dynamic-shape",
                             f"input {layer.name!r} has a dynamic shape [{shape_attr or dims}]; "
                             "fix it with --input-shape NAME=D0,D1,...", kb.dynamic_shapes["source"])]
    if kb.static_dims:
        dynamic = next((port for port in layer.outputs if -1 in port.dims), None)
        # reported only where the dynamism starts (NonZero, NMS...), not on every layer downstream of it
        if dynamic is not None and not any(-1 in port.dims for port, _ in _input_ports(model, layer)):
            inputs = shape_inputs(model, layer)
            if inputs:
                names = ", ".join(repr(p.name) for p in inputs)
                return [_blocker(layer, "dynamic-shape",
                                 f"output port {dynamic.id} has a dynamic dimension {dynamic.dims} computed from the "
                                 f"integer input{'s' if len(inputs) > 1 else ''} {names}; the {kb.target} IR reader "
                                 "needs every dimension static: freeze it with --input-value", kb.sources["reader"],
                                 port=dynamic.id, from_inputs=[p.name for p in inputs])]
            others = [] if layer.type in DATA_DEPENDENT_LENGTH_OPS else shape_inputs(model, layer, integer_only=False)
            if others:
                names = ", ".join(repr(p.name) for p in others)
                return [_blocker(layer, "dynamic-shape",
                                 f"output port {dynamic.id} has a dynamic dimension {dynamic.dims}, computed at run "
                                 f"time from {names}; the {kb.target} IR reader needs every dimension static: where "
                                 f"{'they set' if len(others) > 1 else 'it sets'} the size, freeze "
                                 f"{'them' if len(others) > 1 else 'it'} with --input-value", kb.sources["reader"],
                                 port=dynamic.id)]
            feeds = [found[1].names[0] for port in layer.inputs
                     if (found := model.producer(layer, port.id)) and found[0].type != "Const" and found[1].names]
            cut = f" --output {' --output '.join(feeds)}" if feeds else " --output"
            return [_blocker(layer, "dynamic-shape",
                             f"output port {dynamic.id} has a dynamic dimension {dynamic.dims}: its size depends on "
                             f"the data (how many boxes, indices or elements it keeps), which no --input-shape or "
                             f"--input-value fixes, and the {kb.target} IR reader needs every dimension static; end "
                             f"the model before this layer ({cut.strip()}) and run it on the host",
                             kb.sources["reader"], port=dynamic.id)]
    return []


_INTEGER_TYPES = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64")


def shape_inputs(model, layer, integer_only: bool = True) -> list:
    """The integer network inputs (Parameters) the layer's inputs are computed from: an `axes`, `sizes`,
    `pads` or `repeats` fed at run time, which sets the layer's output shape (integer_only=False: scalars and
    short lists of any type, a float `depth` too)."""
    found, seen = [], set()
    todo = [layer]
    while todo and len(seen) < 10000:
        current = todo.pop()
        ports = current.inputs
        if current is layer and len(ports) > 1:
            data = model.producer(layer, ports[0].id)
            dims = data[1].dims if data else ports[0].dims
            if dims and all(d >= 0 for d in dims):
                ports = ports[1:]          # the data (a static tensor), not what sets the shape
        for port in ports:
            producer = model.producer(current, port.id)
            if producer is None or producer[0].id in seen:
                continue
            source = producer[0]
            seen.add(source.id)
            if source.type == "Parameter":
                # shape-setting inputs are scalars or short lists (an integer image or matrix is data)
                dims = source.outputs[0].dims if source.outputs else []
                integer = (source.attrs.get("element_type") or "").lower() in _INTEGER_TYPES
                if (integer or not integer_only) and len(dims) <= 1:
                    found.append(source)
            else:
                todo.append(source)
    return sorted(found, key=lambda p: p.name)


def _input_ports(model, layer):
    """Each input port with the producer's output port (the one whose dims count), or itself."""
    for port in layer.inputs:
        found = model.producer(layer, port.id)
        yield (found[1] if found else port), port


def _dtype_blockers(layer, kb: Knowledge) -> list[Blocker]:
    bad = []
    for port in layer.outputs:
        etype = port.element_type
        if etype is not None and kb.effective_type(etype) is None:
            bad.append((port.id, etype))
    if layer.type == "Parameter":
        etype = layer.attrs.get("element_type")
        eff = kb.effective_type(etype)
        if eff is not None and eff not in kb.io_inputs:
            bad.append(("input", etype))
    if not bad:
        return []
    listing = ", ".join(f"port {pid}: {etype}" for pid, etype in bad)
    return [_blocker(layer, "dtype", f"element type with no MYRIAD representation ({listing})",
                     kb.sources["effective"], ports=[pid for pid, _ in bad])]


def _precision_blockers(model, layer, op_type: str, kb: Knowledge) -> list[Blocker]:
    found = []
    inputs = list(model.iter_input_types(layer))
    if op_type == "Convert" and inputs and layer.outputs:
        src = kb.effective_type(inputs[0][1])
        dst = kb.effective_type(layer.outputs[0].element_type)
        if src and dst and src != dst and (src, dst) not in kb.convert_pairs:
            found.append(_blocker(layer, "precision",
                                  f"MYRIAD has no Convert from {src} to {dst} "
                                  f"({inputs[0][1]} -> {layer.outputs[0].element_type})", kb.sources["convert"],
                                  port=inputs[0][0].id, found=src, accepts=[]))
    evidence = kb.evidence.get(op_type)
    rules = kb.precision_rules.get(op_type, ())
    for index, (port, etype) in enumerate(inputs):
        eff = kb.effective_type(etype)
        if eff is None:
            continue
        rejected = None                                   # (accepted types, source)
        if evidence is not None and (index, eff) in evidence.rejected:
            rejected = evidence.rejected[(index, eff)]
        elif evidence is None or eff not in evidence.accepted:     # a compiled probe outranks the table
            rule = next((r for r in rules if (r.ports is None or index in r.ports) and eff not in r.accepts), None)
            if rule is not None:
                rejected = (tuple(sorted(rule.accepts)), rule.source)
        if rejected is None:
            continue
        accepts, source = rejected
        producer = model.producer(layer, port.id)
        origin = f" from {producer[0].name!r}" if producer else ""
        found.append(_blocker(layer, "precision",
                              f"input #{index} has type {eff} ({etype}{origin}), but {op_type} on MYRIAD "
                              f"takes one of [{', '.join(accepts)}]", source,
                              port=port.id, found=eff, accepts=list(accepts)))
    return found


# ---- limit checks: each returns None when fine, else a short description of what is wrong -------------

def _check_attr_in(model, layer, params):
    value = layer.attrs.get(params["attr"], params.get("default"))
    if value is None or value.lower() in [a.lower() for a in params["allowed"]]:
        return None
    return f"{params['attr']}={value}"


def _check_attr_all(model, layer, params):
    text = layer.attrs.get(params["attr"])
    if not text:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        return f"{params['attr']}={text}"
    return None if all(v == params["value"] for v in values) else f"{params['attr']}={text}"


def _check_input_rank_in(model, layer, params):
    inputs = layer.inputs
    if params["port"] >= len(inputs):
        return None
    port = inputs[params["port"]]
    found = model.producer(layer, port.id)
    rank = len(found[1].dims) if found else len(port.dims)
    return None if rank in params["ranks"] else f"input rank {rank}"


def _const_source(model, layer, port):
    """The Const behind an input port (looking through ops the plugin folds), or None."""
    found = model.producer(layer, port.id)
    return None if found is None else constant_source(model, Out(*found))


def _check_input_const(model, layer, params):
    inputs = layer.inputs
    if params["port"] >= len(inputs):
        return None
    const = _const_source(model, layer, inputs[params["port"]])
    return None if const is not None else f"input #{params['port']} is computed at run time"


def _check_input_const_size(model, layer, params):
    problem = _check_input_const(model, layer, params)
    if problem:
        return problem
    inputs = layer.inputs
    if params["port"] >= len(inputs):
        return None
    const = _const_source(model, layer, inputs[params["port"]])
    size = int(np.prod(const.outputs[0].dims, dtype=np.int64)) if const.outputs[0].dims else 1
    return None if size == params["size"] else f"input #{params['port']} has {size} values"


def _check_output_unused(model, layer, params):
    outputs = layer.outputs
    if params["port"] >= len(outputs):
        return None
    port = outputs[params["port"]]
    used = model.consumers(layer, port.id)
    return None if not used else f"output #{params['port']} feeds {used[0][0].name!r}"


def _check_same_dims(model, layer, params):
    if not layer.inputs or not layer.outputs:
        return None
    found = model.producer(layer, layer.inputs[0].id)
    before = found[1].dims if found else layer.inputs[0].dims
    after = layer.outputs[0].dims
    for axis in params["axes"]:
        if axis < len(before) and axis < len(after) and before[axis] != after[axis] and before[axis] >= 0 \
                and after[axis] >= 0:
            return f"axis {axis} changes from {before[axis]} to {after[axis]}"
    return None


def _check_inputs_at_least(model, layer, params):
    count = len(layer.inputs)
    return None if count >= params["count"] else f"{count} input(s)"


def _check_axes_form(model, layer, params):
    inputs = layer.inputs
    if params["port"] >= len(inputs) or not inputs:
        return None
    found = model.producer(layer, inputs[0].id)
    rank = len(found[1].dims if found else inputs[0].dims)
    axes = constant_input(model, layer, params["port"])
    if rank not in params["ranks"] or axes is None:
        return None
    normalised = sorted({int(a) % rank for a in np.ravel(axes)})
    if params.get("innermost") and rank - 1 not in normalised:
        return f"{rank}-D over axes {normalised}, not the innermost"
    if rank in params.get("batch_free_ranks", ()) and 0 in normalised:
        return f"{rank}-D over axes {normalised}, the batch included"
    return None


def _check_network_reads_input(model, layer, params):
    return None if model.parameters() else "the network has no input"


def _input_dims(model, layer, index: int = 0) -> list[int]:
    found = model.producer(layer, layer.inputs[index].id)
    return list(found[1].dims if found else layer.inputs[index].dims)


def _check_pads_excluded(model, layer, params):
    if not layer.inputs or not layer.outputs:
        return None
    if layer.attrs.get(params["attr"], "false").lower() not in ("true", "1"):
        return None
    pads = pool_window_pads(layer, _input_dims(model, layer), layer.outputs[0].dims)
    if not pads or all(begin <= 0 and end <= 0 for begin, end in pads):
        return None
    return (f"{params['attr']}=true with windows reaching outside the input "
            f"(before, past the end: {', '.join(f'{max(b, 0)}/{max(e, 0)}' for b, e in pads)})")


def prelu_slope(x_dims, slope):
    """PRelu's slope broadcast to its input: a 1-D slope as long as the channel axis (axis 1) runs along it,
    PRelu-1's rule (unless the innermost axis is as long, where numpy broadcasting already says it), else
    numpy broadcasting. None when the shapes do not broadcast."""
    slope = np.asarray(slope)
    rank = len(x_dims)
    if slope.ndim == 1 and rank > 2 and slope.shape[0] == x_dims[1] != x_dims[-1]:
        slope = slope.reshape([slope.shape[0]] + [1] * (rank - 2))
    try:
        return np.broadcast_to(slope, x_dims)
    except ValueError:
        return None


def plugin_channel_axis(rank: int) -> int:
    """The axis the plugin holds as C in a tensor of `rank` (a 3-D tensor is CHW to it)."""
    from kernelkit.facts.tensor_formats import RANK_LAYOUTS

    return RANK_LAYOUTS.get(rank, "NC").index("C")


def slope_off_channel(model, layer, port: int = 1) -> str | None:
    """What makes a constant PRelu slope one the plugin's PReLU stage misreads (it keeps one slope per
    channel of its own layout), or None: a shared slope, one along the channel axis, or not a constant."""
    if port >= len(layer.inputs) or not layer.inputs:
        return None
    x_dims = _input_dims(model, layer)
    if len(x_dims) < 2 or any(d < 0 for d in x_dims):
        return None
    if model.producer(layer, layer.inputs[port].id) is None:
        return None
    value = folded_constant(model, input_of(model, layer, port))
    if value is None or value.size <= 1:
        return None
    full = prelu_slope(x_dims, value)
    if full is None:
        return None
    channel = plugin_channel_axis(len(x_dims))
    varies = [axis for axis in range(len(x_dims))
              if axis != channel and x_dims[axis] > 1 and not np.all(full == full.take([0], axis=axis))]
    if not varies:
        return None
    return (f"the slope varies along axis {', '.join(map(str, varies))}; the plugin keeps one per channel, "
            f"axis {channel} of a {len(x_dims)}-D input")


def _check_slope_per_channel(model, layer, params):
    return slope_off_channel(model, layer, params["port"])


def _check_batch_kept(model, layer, params):
    if not layer.inputs or not layer.outputs:
        return None
    before, after = _input_dims(model, layer), layer.outputs[0].dims
    if len(before) not in params["ranks"] or not after or before[0] <= 1 or after[0] == before[0]:
        return None
    return f"a batch of {before[0]} becomes {after[0]}"


def _check_no_downscale_when(model, layer, params):
    if not layer.inputs or not layer.outputs:
        return None
    if layer.attrs.get(params["attr"], "false").lower() not in ("true", "1"):
        return None
    before, after = _input_dims(model, layer), layer.outputs[0].dims
    shrunk = [axis for axis, (b, a) in enumerate(zip(before, after)) if 0 < a < b]
    if not shrunk:
        return None
    return f"{params['attr']}=true shrinks axis {', '.join(map(str, shrunk))} ({before} -> {after})"


def _check_scales_match_sizes(model, layer, params):
    if layer.attrs.get("shape_calculation_mode", "sizes").lower() != "scales" or not layer.inputs:
        return None
    if layer.attrs.get("coordinate_transformation_mode", "half_pixel").lower() in params["size_based"]:
        return None
    v11 = layer.version.lower() == "opset11"
    scales = constant_input(model, layer, 1 if v11 else 2)
    if scales is None:
        return None
    before, after = _input_dims(model, layer), layer.outputs[0].dims
    axes = constant_input(model, layer, 2 if v11 else 3)
    axes = [int(a) % len(before) for a in np.ravel(axes)] if axes is not None else list(range(len(before)))
    scales = np.ravel(scales)
    if len(scales) != len(axes) or any(d <= 0 for d in list(before) + list(after)):
        return None
    off = [(axis, float(scale), after[axis] / before[axis]) for axis, scale in zip(axes, scales)
           if abs(float(scale) - after[axis] / before[axis]) > 1e-6 * max(1.0, abs(float(scale)))]
    if not off:
        return None
    return "; ".join(f"axis {axis} by {scale:g}, which the device takes as {size:g} ({before[axis]} -> {after[axis]})"
                     for axis, scale, size in off)


_CHECKS = {
    "axes_form": _check_axes_form,
    "network_reads_input": _check_network_reads_input,
    "inputs_at_least": _check_inputs_at_least,
    "attr_in": _check_attr_in,
    "attr_all": _check_attr_all,
    "input_rank_in": _check_input_rank_in,
    "input_const": _check_input_const,
    "input_const_size": _check_input_const_size,
    "output_unused": _check_output_unused,
    "same_dims": _check_same_dims,
    "pads_excluded": _check_pads_excluded,
    "slope_per_channel": _check_slope_per_channel,
    "batch_kept": _check_batch_kept,
    "scales_match_sizes": _check_scales_match_sizes,
    "no_downscale_when": _check_no_downscale_when,
}


def check_names() -> set[str]:
    """The limit checks this module implements (the knowledge-base tests hold limits.toml to them)."""
    return set(_CHECKS)


# ---- reports (the CLI prints these; --json writes the dict) ---------------------------------------------

JSON_SCHEMA = "kernelkit.inspect/1"


def inspect_report(model, target: Target | str, *, blockers: list[Blocker] | None = None, oracle: dict | None = None) -> dict:
    """The stable JSON form of an inspection (schema documented in docs/ir.md), each blocker with the fix
    `kernelkit patch` would apply."""
    from kernelkit.model.fixes import describe_fix

    target = get_target(target)
    blockers = find_blockers(model, target) if blockers is None else blockers
    by_kind: dict[str, int] = {}
    entries = []
    for b in blockers:
        by_kind[b.kind] = by_kind.get(b.kind, 0) + 1
        entry = b.to_dict()
        entry["fix"] = describe_fix(b, model, target)
        entries.append(entry)
    return {
        "schema": JSON_SCHEMA,
        "model": str(model.path) if model.path else None,
        "target": target.name,
        "ir_version": model.version,
        "layers": len(model.layers),
        "blockers": entries,
        "summary": {"blockers": len(blockers), "by_kind": by_kind, "ok": not blockers},
        "oracle": oracle,
    }
