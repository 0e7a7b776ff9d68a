"""`--output NAME`: make tensors inside a model its outputs and drop what no longer feeds one.

A detector's postprocessing (box decoding, NMS, data-dependent top-k) is what OAK users run on the host
or in DepthAI's detection nodes; cutting the model at its heads' outputs, as Model Optimizer's `--output`
does, leaves the part the VPU runs. ONNX models are cut before conversion (so a postprocessing OpenVINO
cannot convert is gone first), IRs after loading; `verify` cuts the original at the same names.
"""

from __future__ import annotations

import difflib

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.onnx_graph import outer_refs, real_inputs

OPTION = "--output"


def parse_outputs(items) -> list[str]:
    names = []
    for item in items or ():
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                raise KernelkitError(f"{OPTION} {item!r} names no tensor", where=OPTION,
                                     hint="give a tensor name: --output NAME (repeatable, or NAME,NAME)")
            if name not in names:
                names.append(name)
    return names


def _unknown(name: str, known, path, what: str) -> KernelkitError:
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.6)
    hint = (f"did you mean: {', '.join(close)}" if close else
            f"name a {what}; `kernelkit inspect --json` lists layers, and ONNX tensor names are the node outputs")
    return KernelkitError(f"{OPTION} names {name!r}, which is no {what} of the model", path=path, where=OPTION,
                          hint=hint)


def cut_onnx(model, outputs: list[str], *, path=None):
    """A copy of ONNX `model` whose graph outputs are the tensors `outputs`, with every node, initializer
    and input that feeds none of them removed."""
    import onnx

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output if name}
    inputs = {i.name for i in real_inputs(graph)}
    for name in outputs:
        if name not in producer and name not in inputs:
            raise _unknown(name, list(producer) + sorted(inputs), path, "tensor")
    keep, needed, stack = set(), set(), list(outputs)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        index = producer.get(name)
        if index is None or index in keep:
            continue
        keep.add(index)
        node = graph.node[index]
        stack.extend(n for n in node.input if n)
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                stack.extend(outer_refs(body))
    typed = {v.name: v for v in list(graph.value_info) + list(graph.output) + list(graph.input)}
    missing = [n for n in outputs if n not in typed]
    if missing:
        # OpenVINO's frontend takes an output without a type, but a typed one names its element type.
        try:
            inferred = onnx.shape_inference.infer_shapes(result).graph.value_info
            typed.update({v.name: v for v in inferred if v.name in missing})
        except Exception:               # noqa: BLE001 - inference is an aid here; conversion infers again
            pass
    new_outputs = []
    for name in outputs:
        info = onnx.ValueInfoProto()
        if name in typed:
            info.CopyFrom(typed[name])
        info.name = name
        new_outputs.append(info)
    nodes = [node for index, node in enumerate(graph.node) if index in keep]
    initializers = [t for t in graph.initializer if t.name in needed]
    kept_inputs = [i for i in graph.input if i.name in needed]
    value_info = [v for v in graph.value_info if v.name in needed]
    for field, values in (("node", nodes), ("initializer", initializers), ("input", kept_inputs),
                          ("value_info", value_info), ("output", new_outputs)):
        del getattr(graph, field)[:]
        getattr(graph, field).extend(values)
    if not real_inputs(graph):
        raise KernelkitError(f"{OPTION} {', '.join(outputs)}: no model input feeds these tensors", path=path,
                             where=OPTION, hint="name tensors computed from the model's inputs")
    return result


def cut_ir(model, outputs: list[str]) -> None:
    """Make the named outputs (a tensor name, a layer name, or LAYER:PORT) the IR's Results, in place, and
    remove every layer that no longer feeds one."""
    ports = []
    by_tensor = {name: (layer, port) for layer in model.layers if layer.type != "Result"
                 for port in layer.outputs for name in port.names}
    for name in outputs:
        if name in by_tensor:
            ports.append(by_tensor[name])
            continue
        layer_name, _, port_id = name.rpartition(":") if ":" in name else (name, "", "")
        layer = model.find(layer_name)
        if layer is None or layer.type == "Result":
            raise _unknown(name, list(by_tensor) + [l.name for l in model.layers], model.path, "tensor or layer")
        candidates = [p for p in layer.outputs if not port_id or p.id == port_id]
        if len(candidates) != 1:
            listed = ", ".join(f"{layer.name}:{p.id}" for p in layer.outputs) or "none"
            raise KernelkitError(f"{OPTION} {name!r}: layer {layer.name!r} has {len(layer.outputs)} outputs "
                                 f"({listed})", path=model.path, where=OPTION, hint="name one as LAYER:PORT")
        ports.append((layer, candidates[0]))
    for result in model.results():
        model.remove_layer(result)
    for layer, port in ports:
        sink = model.add_layer("Result", "opset1", model.unique_name(f"{layer.name}/sink_port_{port.id}"),
                               inputs=[(port.precision, port.dims)])
        model.connect(layer, port.id, sink, sink.inputs[0].id)
    drop_unreachable(model)
    if not model.parameters():
        raise KernelkitError(f"{OPTION} {', '.join(outputs)}: no model input feeds these outputs", path=model.path,
                             where=OPTION, hint="name tensors computed from the model's inputs")


def drop_unreachable(model) -> None:
    """Remove every layer from which no Result can be reached."""
    live = set()
    stack = [r for r in model.results()]
    while stack:
        layer = stack.pop()
        if layer.id in live:
            continue
        live.add(layer.id)
        for port in layer.inputs:
            found = model.producer(layer, port.id)
            if found is not None:
                stack.append(found[0])
    for layer in [l for l in model.layers if l.id not in live]:
        model.remove_layer(layer)
