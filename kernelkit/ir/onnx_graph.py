"""Reading and walking an ONNX graph (an onnx.ModelProto): inputs, names, types, sub-graphs, shape inference.

Sub-graphs (If branches, Loop and Scan bodies) read names of the enclosing scopes; the walks here follow
them, so a name used only inside a body still counts as used.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError

DEFAULT_DOMAINS = ("", "ai.onnx")
RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


def load_onnx(path: Path, *, external_data: bool = True):
    """The ONNX model at `path` (with its external data unless told otherwise), or a KernelkitError."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise KernelkitError("file not found", path=path)
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception:                      # protobuf raises several types for a file that is not ONNX
        raise KernelkitError("not a readable ONNX model (protobuf parsing failed)", path=path,
                             hint="check the file with onnx.checker, or pass an IR .xml instead") from None


def graph_attr(node, name: str):
    """The sub-graph attribute `name` of an If/Loop node; a node without it is a broken model, not a crash."""
    found = next((a.g for a in node.attribute if a.name == name), None)
    if found is None:
        raise KernelkitError(f"{node.op_type} node {node.name or '(unnamed)'!r} has no {name} graph",
                             where=f"node {node.name!r}", hint="the model is broken: check it with onnx.checker")
    return found


def real_inputs(graph) -> list:
    initializers = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def has_control_flow(model) -> bool:
    return any(n.op_type in ("If", "Loop") and n.domain in DEFAULT_DOMAINS for n in model.graph.node)


def input_dtype(info):
    """numpy dtype of a graph input (float32 when it has none kernelkit can feed)."""
    dtype, _ = numpy_type(info.type.tensor_type.elem_type)
    return dtype if dtype is not None else np.dtype(np.float32)


def explicit_loop_conditions(model) -> None:
    """Give every Loop without a start condition an explicit `true` (what the spec says it means):
    onnx 1.23's reference evaluator runs no iteration for an empty one."""
    from onnx import numpy_helper

    def visit(graph):
        for node in graph.node:
            if node.op_type == "Loop" and node.domain in DEFAULT_DOMAINS and len(node.input) > 1 \
                    and not node.input[1]:
                name = f"{node_label(node)}/kk_true"
                graph.initializer.append(numpy_helper.from_array(np.array(True), name))
                node.input[1] = name
            for sub in graph_attrs(node):
                visit(sub)
    visit(model.graph)


def set_static_shape(info, dims) -> None:
    shape = info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        shape.dim.add().dim_value = int(d)


def declared_dims(info) -> list[int] | None:
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]


def numpy_type(elem_type: int):
    import onnx

    name = onnx.TensorProto.DataType.Name(elem_type).lower()
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        return None, name
    return (dtype if dtype.kind in "biuf" and dtype.itemsize <= 8 else None), name


def graph_attrs(node):
    """The sub-graphs of a node (If branches, Loop/Scan bodies)."""
    import onnx

    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def outer_refs(graph) -> set[str]:
    """Names a (sub-)graph reads from enclosing scopes."""
    local = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    refs: set[str] = set()
    for node in graph.node:
        for name in node.input:
            if name and name not in local:
                refs.add(name)
        for sub in graph_attrs(node):
            refs |= outer_refs(sub) - local
        local.update(o for o in node.output if o)
    refs |= {o.name for o in graph.output if o.name not in local}
    return refs


def rename_refs(graph, mapping: dict[str, str]) -> None:
    """Rename the names `graph` reads from enclosing scopes (unless it defines them itself)."""
    local = {i.name for i in graph.input} | {t.name for t in graph.initializer} | \
        {o for n in graph.node for o in n.output if o}
    inner = {k: v for k, v in mapping.items() if k not in local}
    if not inner:
        return
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in inner:
                node.input[index] = inner[name]
        for sub in graph_attrs(node):
            rename_refs(sub, inner)
    for output in graph.output:
        if output.name in inner:
            output.name = inner[output.name]


def all_names(graph, into: set[str]) -> set[str]:
    into.update(i.name for i in graph.input)
    into.update(o.name for o in graph.output)
    into.update(t.name for t in graph.initializer)
    for node in graph.node:
        into.update(node.input)
        into.update(node.output)
        into.add(node.name)
        for sub in graph_attrs(node):
            all_names(sub, into)
    return into


def definitions(graph, tensors: Counter, nodes: Counter):
    """How often each tensor name and node name is defined, in the graph and all its sub-graphs."""
    tensors.update(i.name for i in graph.input)
    tensors.update(t.name for t in graph.initializer)
    for node in graph.node:
        tensors.update(o for o in node.output if o)
        if node.name:
            nodes[node.name] += 1
        for sub in graph_attrs(node):
            definitions(sub, tensors, nodes)
    return tensors, nodes


def node_label(node) -> str:
    return node.name or next((o for o in node.output if o), node.op_type)


def infer_shapes(model) -> dict[str, list]:
    """Tensor name -> dims (int, or None when unknown) from onnx shape inference; {} when it fails."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception:
        inferred = model
    shapes = {}
    graph = inferred.graph
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor_type = info.type.tensor_type
        if info.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    for tensor in graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    return shapes

