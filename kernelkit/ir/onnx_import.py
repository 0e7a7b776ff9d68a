"""ONNX input: convert with `openvino.convert_model` in a private temp folder and hand back the IR bytes.
An in-memory ONNX model (inputs frozen, control flow folded: `onnx_fold`) is written there first.

Nothing is written next to the user's file; the temp folder is gone when this returns. Constants stay
f32 (compress_to_fp16=False) so the converted model computes exactly what the ONNX model does.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.onnx_dft import fix_dfts
from kernelkit.ir.onnx_graph import all_names, graph_attrs, load_onnx, real_inputs


MAX_OPSET_VERSION = 10_000


class ConversionFailed(KernelkitError):
    """OpenVINO's ONNX frontend refused the model (`verify` then falls back to onnx's reference evaluator)."""


def convert_onnx(path: Path, input_shapes: dict[str, list[int]] | None = None, *,
                 model=None) -> tuple[bytes, bytes]:
    """Convert the ONNX file `path`, or `model` (an onnx.ModelProto made from it; errors still name `path`)."""
    import openvino as ov

    path = Path(path)
    # Read it as ONNX first: handed a file that is not ONNX, OpenVINO tries its other frontends and floods
    # stderr with their parse errors.
    onnx_model = model if model is not None else load_onnx(path, external_data=False)
    graph = onnx_model.graph
    if _has_batch_major_rnn(graph):
        model = onnx_model = seq_major_rnns(model if model is not None else load_onnx(path))
        graph = model.graph
    known = [i.name for i in real_inputs(graph)]
    kwargs = {}
    if input_shapes:
        for name in input_shapes:
            if name not in known:
                raise KernelkitError(f"--input-shape names {name!r}, which is not an input of the model",
                                     path=path, where="--input-shape",
                                     hint=f"inputs are: {', '.join(known) or '(none)'}")
        kwargs["input"] = {name: ov.PartialShape(dims) for name, dims in input_shapes.items()}
    with tempfile.TemporaryDirectory(prefix="kernelkit-onnx-") as tmp:
        source = path
        if model is not None:
            import onnx

            source = Path(tmp) / "source.onnx"
            # protobuf cannot serialise 2 GiB: big weights go to a side file, as large exports ship them
            onnx.save(model, str(source), save_as_external_data=model.ByteSize() > (1 << 31) - (1 << 26),
                      all_tensors_to_one_file=True, location="source.weights")
        try:
            converted = ov.convert_model(str(source), **kwargs)
        except Exception as exc:  # OpenVINO raises several unrelated types for a bad model
            text = openvino_error_text(exc)
            hint = ("OpenVINO has no conversion for these ONNX operations: replace them in the source model"
                    if "No conversion rule" in text else
                    "check the file with onnx.checker, or pass --input-shape for dynamic inputs")
            raise ConversionFailed(f"OpenVINO cannot convert this ONNX model: {text}", path=path, hint=hint) from None
        restore_dropped_attributes(converted, graph)
        try:
            fix_dfts(onnx_model, converted)
        except KernelkitError as exc:
            raise ConversionFailed(exc.message, path=path, where=exc.where, hint=exc.hint) from None
        _restore_input_names(converted, known)
        xml_path = Path(tmp) / "model.xml"
        ov.save_model(converted, str(xml_path), compress_to_fp16=False)
        return xml_path.read_bytes(), xml_path.with_suffix(".bin").read_bytes()


# ONNX attributes OpenVINO's frontend reads past without a word, and the IR attribute that carries each value:
# (op type, ONNX attribute, {ONNX value: (IR attribute, IR value)}). SpaceToDepth-28 gained `mode`; the
# 2026 frontend converts every SpaceToDepth as DCR (blocks_first), which is wrong for CRD.
DROPPED_ATTRIBUTES = (
    ("SpaceToDepth", "mode", {b"CRD": ("mode", "depth_first"), b"DCR": ("mode", "blocks_first")}),
)


def restore_dropped_attributes(converted, graph) -> None:
    """Give the converted ops the ONNX attribute values the frontend dropped (matched by output tensor name)."""
    wanted = {}
    for op_type, attribute, values in DROPPED_ATTRIBUTES:
        for node in graph.node:
            if node.op_type != op_type or not node.output:
                continue
            for attr in node.attribute:
                if attr.name == attribute and attr.s in values:
                    wanted[(op_type, node.output[0])] = values[attr.s]
    if not wanted:
        return
    for op in converted.get_ordered_ops():
        for name in op.output(0).get_names() if op.get_output_size() else ():
            setting = wanted.get((op.get_type_name(), name))
            if setting is not None:
                op.set_attribute(*setting)
    converted.validate_nodes_and_infer_types()


def _restore_input_names(converted, names: list[str]) -> None:
    """OpenVINO's frontend names an input that feeds an output straight (an Identity or Dropout it removed)
    after that output (test_dropout_default's input 'x' became 'y'): give it its ONNX name back, which the blob's
    input is named after. Only a Parameter named after no ONNX input, in the place of an input no Parameter is
    named after, is renamed."""
    params = converted.get_parameters()
    if len(params) != len(names):
        return
    taken = {p.get_friendly_name() for p in params}
    for param, name in zip(params, names):
        if param.get_friendly_name() not in names and name not in taken:
            param.set_friendly_name(name)
            param.output(0).add_names({name})


# ONNX's recurrent ops: the inputs `layout` (opset 14) lays out batch-major, each with the Transpose that makes
# it sequence-major, and the outputs, each with the Transpose that makes it batch-major again. OpenVINO's ONNX
# frontend (2026.4) ignores `layout` and reads a batch-major X as sequence-major (test_lstm_batchwise: Y_h came
# out [1, 1, 7] for a batch of 3).
RNN_OPS = {"LSTM": ({0: (1, 0, 2), 5: (1, 0, 2), 6: (1, 0, 2)}, {0: (2, 0, 1, 3), 1: (1, 0, 2), 2: (1, 0, 2)}),
           "GRU": ({0: (1, 0, 2), 5: (1, 0, 2)}, {0: (2, 0, 1, 3), 1: (1, 0, 2)}),
           "RNN": ({0: (1, 0, 2), 5: (1, 0, 2)}, {0: (2, 0, 1, 3), 1: (1, 0, 2)})}


def _batch_major(node) -> bool:
    return (node.op_type in RNN_OPS and (node.domain or "ai.onnx") == "ai.onnx"
            and any(a.name == "layout" and a.i == 1 for a in node.attribute))


def _graphs(graph):
    """The graph and its sub-graphs (If branches, Loop bodies), without recursion."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            stack.extend(graph_attrs(node))


def _has_batch_major_rnn(graph) -> bool:
    return any(_batch_major(node) for g in _graphs(graph) for node in g.node)


def seq_major_rnns(model):
    """A copy of `model` whose batch-major (layout=1) LSTM, GRU and RNN nodes are sequence-major (layout=0)
    between Transposes: what the attribute means, in the form OpenVINO's frontend converts right."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    taken = all_names(model.graph, set())

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        return name

    for graph in list(_graphs(model.graph)):
        nodes = []
        for node in graph.node:
            if not _batch_major(node):
                nodes.append(node)
                continue
            into, out_of = RNN_OPS[node.op_type]
            label = node.name or node.op_type
            after = []
            for index, perm in into.items():
                if index < len(node.input) and node.input[index]:
                    moved = fresh(f"{node.input[index]}/seq_major")
                    nodes.append(helper.make_node("Transpose", [node.input[index]], [moved], perm=list(perm),
                                                  name=fresh(f"{label}/input{index}_seq_major")))
                    node.input[index] = moved
            for index, perm in out_of.items():
                if index < len(node.output) and node.output[index]:
                    wanted = node.output[index]
                    node.output[index] = fresh(f"{wanted}/seq_major")
                    after.append(helper.make_node("Transpose", [node.output[index]], [wanted], perm=list(perm),
                                                  name=fresh(f"{label}/output{index}_batch_major")))
            for attr in node.attribute:
                if attr.name == "layout":
                    attr.i = 0
            nodes.append(node)
            nodes.extend(after)
        del graph.node[:]
        graph.node.extend(nodes)
    return model


def check_onnx_file(path: Path) -> None:
    """Refuse what onnx and OpenVINO would read without bounds or outside the model's folder: a file that is
    not a regular file or is over the weights limit, and external data that is not a regular file inside the
    model's folder, or ends past the end of its file."""
    import onnx

    from kernelkit.core import limits
    from kernelkit.core.fsutil import named_file, regular_file

    path = Path(path)
    limits.WEIGHTS_BYTES.check(regular_file(path, what="ONNX model").st_size, "the ONNX file", path=path)
    model = load_onnx(path, external_data=False)
    for entry in model.opset_import:
        # OpenVINO's frontend walks versions one by one: opset 2^40 keeps it busy for days
        if not 1 <= entry.version <= MAX_OPSET_VERSION:
            raise KernelkitError(f"opset version {entry.version} of domain {entry.domain or 'ai.onnx'!r} is not "
                                 "one any ONNX release has", path=path, where="opset_import",
                                 hint="re-export the model; ONNX opsets run from 1 to a few dozen")
    _check_node_arity(model, path)
    folder = path.parent.resolve()
    total = 0
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        where = f"tensor {tensor.name!r} (external data)"
        location = entries.get("location", "")
        target = named_file(folder, location, source=path, where=where, what="external data file")
        size = target.stat().st_size
        try:
            offset = int(entries.get("offset", 0))
            length = int(entries.get("length", size - offset))
        except ValueError:
            raise KernelkitError("external data offset/length are not integers", path=path, where=where) from None
        if offset < 0 or length < 0 or offset + length > size:
            raise KernelkitError(f"external data bytes {offset}..{offset + length} are outside {location!r} "
                                 f"({size} bytes)", path=path, where=where)
        total += length
    limits.WEIGHTS_BYTES.check(total, "the ONNX model's external data", path=path)


def _check_node_arity(model, path: Path) -> None:
    """Refuse a standard node with fewer or more inputs or outputs than its op has at the model's opset:
    OpenVINO's frontend reads the inputs a schema promises without checking, and crashed on such a node
    (a Pad written for opset 6, its pads an attribute, in a model declaring opset 22 segfaulted)."""
    import onnx.defs

    versions = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    version = versions.get("ai.onnx")
    if version is None:
        return
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)
            if (node.domain or "ai.onnx") != "ai.onnx":
                continue
            if not isinstance(node.op_type, str):      # protobuf hands back bytes that are not UTF-8
                raise KernelkitError(f"node {node.name!r} has an op type that is not UTF-8 text", path=path,
                                     hint="the file is damaged: re-export the model, or check it with onnx.checker")
            try:
                schema = onnx.defs.get_schema(node.op_type, version, "")
            except onnx.defs.SchemaError:
                continue                    # an op onnx does not know: OpenVINO names it as unconvertible
            for what, count, low, high in (("inputs", len(node.input), schema.min_input, schema.max_input),
                                           ("outputs", len(node.output), schema.min_output, schema.max_output)):
                if not low <= count <= high:
                    expected = f"{low}" if low == high else f"{low} to {high}" if high < 1 << 20 else f"{low} or more"
                    raise KernelkitError(
                        f"{node.op_type} node {node.name or '(unnamed)'!r} has {count} {what[:-1] if count == 1 else what}; at opset {version} "
                        f"(opset {schema.since_version} form) {node.op_type} takes {expected}", path=path,
                        where=f"node {node.name or node.op_type!r}",
                        hint="the node was written for another opset than the model declares: re-export the model, "
                             "or check it with onnx.checker")


def _tensors(graph):
    """Every TensorProto of a graph and its sub-graphs (initializers, Constant values), without recursion."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield from g.initializer
        yield from (s.values for s in g.sparse_initializer)
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


_NOISE = re.compile(r"(Check '.*' failed at |Exception from |FrontEnd API failed with )")


def openvino_error_text(exc: BaseException) -> str:
    """OpenVINO's message without its source-location lines ("Check 'false' failed at x.cpp:151:")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not _NOISE.match(line)]
    return " ".join(useful) or (lines[0] if lines else type(exc).__name__)
