"""Freeze ONNX inputs to values and fold the control flow that becomes static: If, Loop, Shape.

MYRIAD has neither If nor Loop, yet many models only choose a branch on a side input (a sample rate) or
a shape, or repeat a body a fixed number of times: once those are known the graph is straight-line.
OpenVINO keeps If and Loop even when their condition is a constant, so this works on the ONNX graph,
before OpenVINO converts it:

- a frozen input becomes an initializer of its declared type (`kernelkit.ir.freeze` builds the array);
- a node whose inputs are all constant is computed by onnx's reference evaluator and becomes an
  initializer, when one input became constant here (frozen, or a static shape; up to MAX_FOLD_ELEMENTS)
  or the result is small (SMALL_ELEMENTS: conditions, trip counts); the model's own weights stay as stored;
- Shape/Size of a tensor whose shape onnx shape inference finds static becomes its dims;
- an If with a constant condition becomes the taken branch, the branch results taking the If's output
  names; its other nodes and tensors keep their names unless something else in the model defines them,
  then they become `<if>/then/<name>` (unique);
- a Loop with a constant (or absent) trip count, whose exit condition depends only on the iteration
  number and constants, is unrolled: at most MAX_ITERATIONS iterations and MAX_UNROLLED_NODES new nodes.
  Final loop-carried values keep the Loop's output names; scan outputs are Unsqueeze + Concat on axis 0.

Shape inference runs again after every round, so what an inlined branch exposes folds in the next one.
An If or Loop left in the graph gets a refusal saying which inputs would make it foldable.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError

MAX_ITERATIONS = 64
MAX_UNROLLED_NODES = 4096
MAX_FOLD_ELEMENTS = 1 << 20
SMALL_ELEMENTS = 64
MAX_ROUNDS = 32
_RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
_DATA_DEPENDENT_SHAPE = {"NonZero", "Unique", "NonMaxSuppression", "Compress", "StringSplit"}
# Ops whose output shape follows the *values* of the inputs after the first (the data input).
_SHAPE_FROM_VALUES = {"Reshape", "Expand", "Tile", "Slice", "Pad", "Resize", "Upsample", "TopK", "OneHot",
                      "Squeeze", "Unsqueeze", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "Split",
                      "CenterCropPad", "Col2Im"}
_SHAPE_ONLY_VALUES = {"Range", "ConstantOfShape"}      # every input's value sets the output shape
_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class FoldLog:
    """What freeze_onnx did: inputs frozen, nodes folded or inlined or unrolled, and what it left."""

    frozen: list[dict] = field(default_factory=list)        # kernelkit.ir.freeze.frozen_record
    changes: list[tuple[str, str, str]] = field(default_factory=list)     # (node, before, after)
    refusals: list[tuple[str, str, str]] = field(default_factory=list)    # (node, op type, reason)
    fixes: dict[str, list[str]] = field(default_factory=dict)    # node -> options that would fold it

    def options(self) -> list[str]:
        """Every option some left-over If/Loop asks for, once each."""
        return sorted({option for options in self.fixes.values() for option in options})


def load_onnx(path: Path):
    """The ONNX model at `path` (external data included), or a KernelkitError."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise KernelkitError("file not found", path=path)
    try:
        return onnx.load(str(path))
    except Exception:                      # protobuf raises several types for a file that is not ONNX
        raise KernelkitError("not a readable ONNX model (protobuf parsing failed)", path=path,
                             hint="check the file with onnx.checker, or pass an IR .xml instead") from None


def _graph_attr(node, name: str):
    """The sub-graph attribute `name` of an If/Loop node; a node without it is a broken model, not a crash."""
    found = next((a.g for a in node.attribute if a.name == name), None)
    if found is None:
        raise KernelkitError(f"{node.op_type} node {node.name or '(unnamed)'!r} has no {name} graph",
                             where=f"node {node.name!r}", hint="the model is broken: check it with onnx.checker")
    return found


def real_inputs(graph) -> list:
    initializers = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def freeze_onnx(model, *, input_shapes=None, input_values=None, fold: bool = True, path=None):
    """A copy of ONNX `model` with `input_shapes` set on its inputs, `input_values` frozen into
    initializers and, with `fold`, what became constant folded. Returns (model, FoldLog)."""
    import onnx

    from kernelkit.ir.freeze import OPTION, frozen_record, typed_array, value_shape

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    log = FoldLog()
    inputs = {i.name: i for i in real_inputs(graph)}
    known = ", ".join(inputs) or "(none)"
    for option, names in (("--input-shape", input_shapes or {}), (OPTION, input_values or {})):
        for name in names:
            if name not in inputs:
                raise KernelkitError(f"{option} names {name!r}, which is not an input of the model", path=path,
                                     where=option, hint=f"inputs are: {known}")
    for name, dims in (input_shapes or {}).items():
        if name not in (input_values or {}):
            _set_static_shape(inputs[name], dims)
    for name, raw in (input_values or {}).items():
        info = inputs[name]
        dtype, type_name = _numpy_type(info.type.tensor_type.elem_type) if info.type.HasField("tensor_type") \
            else (None, "a non-tensor type")
        if dtype is None:
            raise KernelkitError(f"input {name!r} has element type {type_name}, which {OPTION} cannot freeze",
                                 path=path, where=f"{OPTION} {name}",
                                 hint="only numeric and boolean inputs can be frozen")
        dims = value_shape(name, _declared_dims(info), len(raw), (input_shapes or {}).get(name), path)
        array = typed_array(name, raw, dtype, dims, path, type_name)
        graph.input.remove(info)
        graph.initializer.append(onnx.numpy_helper.from_array(array, name))
        log.frozen.append(frozen_record(name, type_name, dims, array))
    if input_values and result.ir_version < 4:
        result.ir_version = 4                # from IR 4 on, an initializer need not be (and is not) an input
    if fold:
        try:
            _Folder(result, log, {r["input"] for r in log.frozen}).run()
        except KernelkitError as exc:
            if exc.path is None:
                exc.path = str(path) if path is not None else None
            raise
    return result, log


def has_control_flow(model) -> bool:
    return any(n.op_type in ("If", "Loop") and n.domain in _DEFAULT_DOMAINS for n in model.graph.node)


def input_dtype(info):
    """numpy dtype of a graph input (float32 when it has none kernelkit can feed)."""
    dtype, _ = _numpy_type(info.type.tensor_type.elem_type)
    return dtype if dtype is not None else np.dtype(np.float32)


def explicit_loop_conditions(model) -> None:
    """Give every Loop without a start condition an explicit `true` (what the spec says it means):
    onnx 1.23's reference evaluator runs no iteration for an empty one."""
    from onnx import numpy_helper

    def visit(graph):
        for node in graph.node:
            if node.op_type == "Loop" and node.domain in _DEFAULT_DOMAINS and len(node.input) > 1 \
                    and not node.input[1]:
                name = f"{node_label(node)}/kk_true"
                graph.initializer.append(numpy_helper.from_array(np.array(True), name))
                node.input[1] = name
            for sub in _graph_attrs(node):
                visit(sub)
    visit(model.graph)


def _set_static_shape(info, dims) -> None:
    shape = info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        shape.dim.add().dim_value = int(d)


def _declared_dims(info) -> list[int] | None:
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]


def _numpy_type(elem_type: int):
    import onnx

    name = onnx.TensorProto.DataType.Name(elem_type).lower()
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        return None, name
    return (dtype if dtype.kind in "biuf" and dtype.itemsize <= 8 else None), name


def _graph_attrs(node):
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
        for sub in _graph_attrs(node):
            refs |= outer_refs(sub) - local
        local.update(o for o in node.output if o)
    refs |= {o.name for o in graph.output if o.name not in local}
    return refs


def _rename_refs(graph, mapping: dict[str, str]) -> None:
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
        for sub in _graph_attrs(node):
            _rename_refs(sub, inner)
    for output in graph.output:
        if output.name in inner:
            output.name = inner[output.name]


def _all_names(graph, into: set[str]) -> set[str]:
    into.update(i.name for i in graph.input)
    into.update(o.name for o in graph.output)
    into.update(t.name for t in graph.initializer)
    for node in graph.node:
        into.update(node.input)
        into.update(node.output)
        into.add(node.name)
        for sub in _graph_attrs(node):
            _all_names(sub, into)
    return into


def _definitions(graph, tensors: Counter, nodes: Counter):
    """How often each tensor name and node name is defined, in the graph and all its sub-graphs."""
    tensors.update(i.name for i in graph.input)
    tensors.update(t.name for t in graph.initializer)
    for node in graph.node:
        tensors.update(o for o in node.output if o)
        if node.name:
            nodes[node.name] += 1
        for sub in _graph_attrs(node):
            _definitions(sub, tensors, nodes)
    return tensors, nodes


def node_label(node) -> str:
    return node.name or next((o for o in node.output if o), node.op_type)


class _Folder:
    def __init__(self, model, log: FoldLog, frozen: set[str]):
        self.model = model
        self.graph = model.graph
        self.log = log
        self.opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), 1)
        self.names = _all_names(self.graph, set())
        self.defined, self.node_names = _definitions(self.graph, Counter(), Counter())
        self.derived = set(frozen)          # values that became constant here (not the model's own weights)
        self.values: dict[str, np.ndarray] = {}
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.shapes: dict[str, list] = {}
        self.reasons: dict[str, str] = {}   # Loop label -> why it was not unrolled (last round)
        self.changed = False

    # ---- names and constants ----------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.names:
            name, n = f"{base}_{n}", n + 1
        self.names.add(name)
        return name

    def fresh(self, name: str, label: str, keep: bool, counts: Counter) -> str:
        """A branch's own name stays when nothing else in the model defines it (an inlined If); otherwise,
        and for every Loop iteration, it gets the `label/` prefix (made unique)."""
        if keep and counts[name] == 1:
            counts[name] += 1
            return name
        return self.unique(f"{label}/{name}")

    def const(self, name: str):
        if name in self.values:
            return self.values[name]
        tensor = self.initializers.get(name)
        if tensor is None:
            return None
        from onnx import numpy_helper

        value = numpy_helper.to_array(tensor)
        self.values[name] = value
        return value

    def is_const(self, name: str) -> bool:
        return name in self.values or name in self.initializers

    def size(self, name: str) -> int:
        if name in self.values:
            return int(np.size(self.values[name]))
        return math.prod(self.initializers[name].dims)

    def add_initializer(self, name: str, array, derived: bool = True) -> None:
        from onnx import numpy_helper

        tensor = numpy_helper.from_array(np.asarray(array), name)
        self.graph.initializer.append(tensor)
        self.initializers[name] = tensor
        self.values[name] = np.asarray(array)
        if derived:
            self.derived.add(name)

    def static_shape(self, name: str):
        dims = self.shapes.get(name)
        return dims if dims is not None and all(isinstance(d, int) and d >= 0 for d in dims) else None

    # ---- the driver -------------------------------------------------------------------------------
    def run(self) -> None:
        any_change = False
        for _ in range(MAX_ROUNDS):
            self.shapes = _infer_shapes(self.model)
            self.changed = False
            self._round()
            any_change |= self.changed
            if not self.changed:
                break
        if any_change:
            self._remove_dead()
        self._explain_leftovers()

    def _round(self) -> None:
        pending = deque(self.graph.node)
        kept = []
        outputs = {o.name for o in self.graph.output}
        while pending:
            node = pending.popleft()
            if node.domain not in _DEFAULT_DOMAINS:
                kept.append(node)
                continue
            replaced = None
            if node.op_type == "If":
                replaced = self._inline_if(node)
            elif node.op_type == "Loop":
                replaced = self._unroll(node)
            elif node.op_type == "Constant":
                self._note_constant(node)
            elif not any(o in outputs for o in node.output) and self._fold(node):
                continue
            if replaced is None:
                kept.append(node)
            else:
                pending.extendleft(reversed(replaced))
                self.changed = True
        del self.graph.node[:]
        self.graph.node.extend(kept)

    # ---- plain nodes ------------------------------------------------------------------------------
    def _note_constant(self, node) -> None:
        values = self._evaluate(node, [])
        if values is not None:
            self.values[node.output[0]] = values[0]

    def _fold(self, node) -> bool:
        """Replace `node` by initializers when its result is known here; False to keep it."""
        if node.op_type in _RANDOM or any(True for _ in _graph_attrs(node)) or not node.input:
            return False
        names = [n for n in node.input if n]
        if node.op_type in ("Shape", "Size") and self.const(node.input[0]) is None:
            dims = self.static_shape(node.input[0])
            if dims is None:
                return False
            values = [_shape_value(node, dims)]
            derived = True
            what = "static shape"
        else:
            if not all(self.is_const(n) for n in names):
                return False
            derived = any(n in self.derived for n in names)
            if not derived and any(self.size(n) > SMALL_ELEMENTS for n in names):
                return False                   # the model's own weights: leave them as stored (and unread)
            values = self._evaluate(node, [self.const(n) if n else None for n in node.input])
            if values is None:
                return False
            limit = MAX_FOLD_ELEMENTS if derived else SMALL_ELEMENTS
            if any(np.size(v) > limit for v in values):
                return False
            what = "constant inputs"
        for name, value in zip(node.output, values):
            if name:
                self.add_initializer(name, value, derived)
        shapes = ", ".join(str(list(np.shape(v))) for v in values)
        self.log.changes.append((node_label(node), node.op_type, f"Const {shapes} ({what})"))
        self.changed = True
        return True

    def _evaluate(self, node, inputs):
        from onnx.reference import ReferenceEvaluator

        feeds = {n: v for n, v in zip(node.input, inputs) if n}
        try:
            results = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception:                  # an op the reference evaluator lacks: the node stays
            return None
        return [np.asarray(r) for r in results]

    # ---- If ---------------------------------------------------------------------------------------
    def _inline_if(self, node):
        cond = self.const(node.input[0])
        if cond is None or np.size(cond) != 1:
            return None
        taken = bool(np.asarray(cond).reshape(-1)[0])
        branch = _graph_attr(node, "then_branch" if taken else "else_branch")
        label = f"{node_label(node)}/{'then' if taken else 'else'}"
        mapping = self._local_names(branch, label, keep=True)
        extra = self._bind(branch, mapping, [(o.name, t) for o, t in zip(branch.output, node.output)], label,
                           keep=True)
        nodes = [self._copy(n, mapping, label, keep=True) for n in branch.node] + extra
        self.log.changes.append((node_label(node), "If",
                                 f"{'then' if taken else 'else'} branch inlined ({len(nodes)} nodes)"))
        return nodes

    def _local_names(self, graph, label: str, shared: dict | None = None,
                     keep: bool = False) -> dict[str, str | None]:
        """Map a body's initializers to new main-graph initializers (once: `shared`) and reserve its node
        outputs (None until bound or named)."""
        mapping: dict[str, str | None] = {}
        if shared is not None:
            mapping.update(shared)
        else:
            for tensor in graph.initializer:
                new = self.fresh(tensor.name, label, keep, self.defined)
                copy = type(tensor)()
                copy.CopyFrom(tensor)
                copy.name = new
                self.graph.initializer.append(copy)
                self.initializers[new] = copy
                mapping[tensor.name] = new
        for n in graph.node:
            for o in n.output:
                if o:
                    mapping[o] = None
        return mapping

    def _bind(self, graph, mapping, pairs, label: str, keep: bool = False):
        """Body results take the outer output names: a tensor a body node computes is renamed, anything
        else (an outer name, an initializer, a tensor bound twice) goes through an Identity."""
        from onnx import helper

        extra = []
        for source, target in pairs:
            if not target:
                continue
            if source in mapping and mapping[source] is None:
                mapping[source] = target
            else:
                extra.append((source, target))
        for key, value in mapping.items():
            if value is None:
                mapping[key] = self.fresh(key, label, keep, self.defined)
        return [helper.make_node("Identity", [mapping.get(s) or s], [t], name=self.unique(f"{label}/{t}/identity"))
                for s, t in extra]

    def _copy(self, node, mapping, label: str, keep: bool = False):
        import onnx

        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        for index, name in enumerate(copy.input):
            if name in mapping:
                copy.input[index] = mapping[name]
        for index, name in enumerate(copy.output):
            if name in mapping:
                copy.output[index] = mapping[name]
        copy.name = self.fresh(node.name, label, keep, self.node_names) if node.name else \
            self.unique(f"{label}/{node.op_type}")
        for sub in _graph_attrs(copy):
            _rename_refs(sub, mapping)
        return copy

    # ---- Loop -------------------------------------------------------------------------------------
    def _unroll(self, node):
        label = node_label(node)
        body = _graph_attr(node, "body")
        trip_name = node.input[0] if len(node.input) > 0 else ""
        cond_name = node.input[1] if len(node.input) > 1 else ""
        carried_in = list(node.input[2:])
        body_in = [i.name for i in body.input]
        body_out = [o.name for o in body.output]
        n_carried = len(carried_in)
        n_scan = len(body_out) - 1 - n_carried
        trip = self.const(trip_name) if trip_name else None
        if trip_name and trip is None:
            self.reasons[label] = "its trip count is computed at run time"
            return None
        cond = self.const(cond_name) if cond_name else np.array(True)
        if cond is None:
            self.reasons[label] = "its start condition is computed at run time"
            return None
        step = self._exit_condition(body, label)
        if step is None:
            return None
        trip = int(np.asarray(trip).reshape(-1)[0]) if trip is not None else None
        conds = []               # the condition each iteration starts with
        running = bool(np.asarray(cond).reshape(-1)[0])
        while (trip is None or len(conds) < trip) and running:
            if len(conds) >= MAX_ITERATIONS:
                self.reasons[label] = f"it runs more than {MAX_ITERATIONS} iterations (the unroll limit)"
                return None
            conds.append(running)
            running = step(len(conds) - 1, running)
        count = len(conds)
        if count * max(len(body.node), 1) > MAX_UNROLLED_NODES:
            self.reasons[label] = (f"{count} iterations of {len(body.node)} nodes exceed the unroll limit of "
                                   f"{MAX_UNROLLED_NODES} nodes")
            return None
        if count == 0 and n_scan:
            self.reasons[label] = "it runs no iteration, so its scan outputs have no known shape"
            return None
        shared = {k: v for k, v in self._local_names(body, f"{label}/body").items() if v is not None}
        carried, scans, nodes = carried_in, [[] for _ in range(n_scan)], []
        for index in range(count):
            tag = f"{label}/iter{index}"
            mapping = self._local_names(body, tag, shared)
            counter = self.unique(f"{tag}/{body_in[0]}")
            self.add_initializer(counter, np.array(index, np.int64))
            flag = self.unique(f"{tag}/{body_in[1]}")
            self.add_initializer(flag, np.array(conds[index], bool))
            mapping[body_in[0]], mapping[body_in[1]] = counter, flag
            for name, value in zip(body_in[2:], carried):
                mapping[name] = value
            last = index == count - 1
            pairs = list(zip(body_out[1:1 + n_carried], node.output)) if last else []
            extra = self._bind(body, mapping, pairs, tag)
            nodes += [self._copy(n, mapping, tag) for n in body.node] + extra
            carried = [mapping.get(s) or s for s in body_out[1:1 + n_carried]]
            for k in range(n_scan):
                source = body_out[1 + n_carried + k]
                scans[k].append(mapping.get(source) or source)
        if count == 0:
            nodes += self._identities(list(zip(carried_in, node.output)), label)
        nodes += self._stack(scans, list(node.output[n_carried:]), label)
        self.log.changes.append((label, "Loop", f"unrolled: {count} iteration(s), {len(nodes)} nodes"))
        return nodes

    def _identities(self, pairs, label: str):
        from onnx import helper

        return [helper.make_node("Identity", [s], [t], name=self.unique(f"{label}/{t}/identity"))
                for s, t in pairs if t]

    def _stack(self, scans, targets, label: str):
        """Scan outputs: each iteration's value gets a leading axis, then all are concatenated on it."""
        from onnx import helper

        nodes = []
        axes = None
        if self.opset >= 13:
            axes = self.unique(f"{label}/axis0")
            self.add_initializer(axes, np.array([0], np.int64))
        for values, target in zip(scans, targets):
            if not target:
                continue
            parts = []
            for value in values:
                part = target if len(values) == 1 else self.unique(f"{label}/{target}/part")
                inputs = [value, axes] if axes else [value]
                extra = {} if axes else {"axes": [0]}
                nodes.append(helper.make_node("Unsqueeze", inputs, [part], name=self.unique(f"{part}/unsqueeze"),
                                              **extra))
                parts.append(part)
            if len(parts) > 1:
                nodes.append(helper.make_node("Concat", parts, [target], axis=0, name=self.unique(f"{target}/concat")))
        return nodes

    def _exit_condition(self, body, label: str):
        """A function (iteration, condition) -> condition after that iteration, or None (reason kept) when
        the body's exit condition depends on loop-carried data or on values computed at run time."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        iter_name, cond_in = body.input[0].name, body.input[1].name
        carried = {i.name for i in body.input[2:]}
        cond_out = body.output[0].name
        if cond_out == cond_in:
            return lambda index, cond: cond
        producers = {o: n for n in body.node for o in n.output if o}
        body_inits = {t.name: t for t in body.initializer}
        needed, leaves, stack = [], set(), [cond_out]
        seen = set()
        while stack:
            name = stack.pop()
            if name in seen or not name:
                continue
            seen.add(name)
            found = producers.get(name)
            if found is None:
                leaves.add(name)
                continue
            if found not in needed:
                needed.append(found)
            stack.extend(found.input)
            for sub in _graph_attrs(found):
                stack.extend(outer_refs(sub))
        outer = {}
        for leaf in leaves - {iter_name, cond_in} - set(body_inits):
            if leaf in carried:
                self.reasons[label] = f"its exit condition depends on the loop-carried value {leaf!r}"
                return None
            value = self.const(leaf)
            if value is None:
                self.reasons[label] = f"its exit condition depends on {leaf!r}, computed at run time"
                return None
            outer[leaf] = value
        order = [n for n in body.node if n in needed]
        if cond_out not in producers:
            order.append(helper.make_node("Identity", [cond_out], ["kk_cond"]))
            result_name = "kk_cond"
        else:
            result_name = cond_out
        from onnx import TensorProto, numpy_helper

        graph = helper.make_graph(
            order, "exit_condition",
            [helper.make_tensor_value_info(iter_name, TensorProto.INT64, []),
             helper.make_tensor_value_info(cond_in, TensorProto.BOOL, [])],
            [helper.make_tensor_value_info(result_name, TensorProto.BOOL, None)],
            initializer=[body_inits[n] for n in leaves if n in body_inits] +
                        [numpy_helper.from_array(np.asarray(v), n) for n, v in outer.items()])
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        try:
            session = ReferenceEvaluator(model)
        except Exception as exc:
            self.reasons[label] = f"its exit condition cannot be evaluated ({exc})"
            return None

        def step(index, cond):
            value = session.run(None, {iter_name: np.array(index, np.int64), cond_in: np.array(cond)})[0]
            return bool(np.asarray(value).reshape(-1)[0])
        return step

    # ---- clean-up and explanations ----------------------------------------------------------------
    def _remove_dead(self) -> None:
        needed = {o.name for o in self.graph.output}
        kept = []
        for node in reversed(self.graph.node):
            if any(o in needed for o in node.output if o):
                kept.append(node)
                needed.update(n for n in node.input if n)
                for sub in _graph_attrs(node):
                    needed |= outer_refs(sub)
        del self.graph.node[:]
        self.graph.node.extend(reversed(kept))
        inits = [t for t in self.graph.initializer if t.name in needed or t.name in
                 {i.name for i in self.graph.input}]
        del self.graph.initializer[:]
        self.graph.initializer.extend(inits)
        produced = {o for n in self.graph.node for o in n.output} | {t.name for t in inits} | \
            {i.name for i in self.graph.input}
        infos = [v for v in self.graph.value_info if v.name in produced]
        del self.graph.value_info[:]
        self.graph.value_info.extend(infos)

    def _explain_leftovers(self) -> None:
        explain = Explainer(self.graph, self.shapes, self.const)
        for node in self.graph.node:
            if node.op_type not in ("If", "Loop") or node.domain not in _DEFAULT_DOMAINS:
                continue
            label = node_label(node)
            reason = self.reasons.get(label) if node.op_type == "Loop" else None
            fix = explain.fix(node) if reason is None or "run time" in reason else []
            text = reason or explain.why(node)
            if fix:
                self.log.fixes[label] = fix
                text += f"; fold it with {' '.join(fix)}"
            self.log.refusals.append((label, node.op_type, text))


def _shape_value(node, dims) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(math.prod(dims), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[start:end] if "end" in attrs else dims[start:], np.int64)


def _infer_shapes(model) -> dict[str, list]:
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


class Explainer:
    """Which inputs keep a value from being constant: by value (--input-value) or by a dynamic shape
    (--input-shape), or a reason nothing can (random, data-dependent shapes, a Loop's data-dependent exit)."""

    def __init__(self, graph, shapes, const):
        self.graph = graph
        self.shapes = shapes
        self.const = const
        self.producers = {o: n for n in graph.node for o in n.output if o}
        self.inputs = {i.name: i for i in real_inputs(graph)}
        self.memo: dict[tuple[str, bool], tuple] = {}

    def _static(self, name) -> bool:
        dims = self.shapes.get(name)
        return dims is not None and all(isinstance(d, int) and d >= 0 for d in dims)

    def deps(self, name: str, shape: bool = False) -> tuple[frozenset, frozenset, frozenset]:
        """(inputs needed by value, inputs needed by shape, reasons it can never be constant)."""
        key = (name, shape)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = (frozenset(), frozenset(), frozenset())       # cycles cannot happen; be safe
        values, shapes, never = set(), set(), set()
        if not name or (shape and self._static(name)) or (not shape and self.const(name) is not None):
            pass
        elif name in self.inputs:
            (shapes if shape else values).add(name)
        elif name in self.producers:
            node = self.producers[name]
            op = node.op_type
            parts = []
            if not shape and op in ("Shape", "Size"):
                parts.append(self.deps(node.input[0], True))
            elif not shape and op in _RANDOM:
                never.add(f"{node_label(node)} ({op}) is random")
            elif shape and op in _DATA_DEPENDENT_SHAPE:
                never.add(f"the shape of {node_label(node)} ({op}) depends on data")
            elif shape and op in _SHAPE_ONLY_VALUES:
                parts += [self.deps(n) for n in node.input]
            elif shape and op in _SHAPE_FROM_VALUES:
                parts.append(self.deps(node.input[0], True))
                parts += [self.deps(n) for n in node.input[1:]]
            else:
                parts += [self.deps(n, shape) for n in node.input]
                for sub in _graph_attrs(node):
                    parts += [self.deps(n, shape) for n in outer_refs(sub)]
            for v, s, r in parts:
                values |= v
                shapes |= s
                never |= r
        result = (frozenset(values), frozenset(shapes), frozenset(never))
        self.memo[key] = result
        return result

    def _controls(self, node) -> list[str]:
        if node.op_type == "If":
            return [node.input[0]]
        return [n for n in node.input[:2] if n]

    def _needs(self, node):
        values, shapes, never = set(), set(), set()
        names = self._controls(node)
        if node.op_type == "Loop":
            body = _graph_attr(node, "body")
            names = names + [n for n in _exit_refs(body)]
        for name in names:
            v, s, r = self.deps(name)
            values |= v
            shapes |= s
            never |= r
        return values, shapes - values, never

    def fix(self, node) -> list[str]:
        """The options that would make `node` foldable (["--input-value sr=..."]); [] when none would."""
        values, shapes, never = self._needs(node)
        if never or (node.op_type == "Loop" and _data_dependent_exit(node)):
            return []
        return [f"--input-value {n}=..." for n in sorted(values)] + [f"--input-shape {n}=..." for n in sorted(shapes)]

    def why(self, node) -> str:
        values, shapes, never = self._needs(node)
        what = "condition" if node.op_type == "If" else "trip count or condition"
        if never:
            return f"its {what} can never be constant: {'; '.join(sorted(never))}"
        if node.op_type == "Loop" and (leaf := _data_dependent_exit(node)):
            return f"its exit condition depends on the loop-carried value {leaf!r}"
        bits = [f"the value of input {n!r}" for n in sorted(values)] + \
               [f"the shape of input {n!r}" for n in sorted(shapes)]
        if bits:
            return f"its {what} depends on {' and '.join(bits)}, known only at run time"
        return f"its {what} could not be computed by onnx's reference evaluator"


def _exit_refs(body) -> list[str]:
    """Outer names a Loop body's exit condition reads."""
    producers = {o: n for n in body.node for o in n.output if o}
    local = {i.name for i in body.input} | {t.name for t in body.initializer}
    refs, stack, seen = [], [body.output[0].name], set()
    while stack:
        name = stack.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        node = producers.get(name)
        if node is None:
            if name not in local:
                refs.append(name)
            continue
        stack.extend(node.input)
        for sub in _graph_attrs(node):
            stack.extend(outer_refs(sub))
    return refs


def _data_dependent_exit(node) -> str | None:
    """The loop-carried value a Loop's exit condition reads, if any."""
    body = _graph_attr(node, "body")
    carried = {i.name for i in body.input[2:]}
    producers = {o: n for n in body.node for o in n.output if o}
    stack, seen = [body.output[0].name], set()
    while stack:
        name = stack.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        if name in carried:
            return name
        found = producers.get(name)
        if found is not None:
            stack.extend(found.input)
            for sub in _graph_attrs(found):
                stack.extend(outer_refs(sub))
    return None


def foldable_options(path, input_shapes=None) -> list[str]:
    """The options that would let patch fold more of the ONNX model's If/Loop (a dry run), for hints."""
    model = load_onnx(path)
    if not has_control_flow(model):
        return []
    known = {i.name for i in real_inputs(model.graph)}
    shapes = {k: v for k, v in (input_shapes or {}).items() if k in known}
    return freeze_onnx(model, input_shapes=shapes, fold=True, path=path)[1].options()


def describe_control_flow(path, input_shapes=None) -> dict[str, str | None]:
    """For inspect: what patch does about each top-level If/Loop of the ONNX model at `path` (a dry run of
    the fold), or the options that would let it fold; None when nothing can. Keys: node name, output
    names, and "type:If"/"type:Loop" when all nodes of the type get the same answer."""
    model = load_onnx(path)
    if not has_control_flow(model):
        return {}
    known = {i.name for i in real_inputs(model.graph)}
    shapes = {k: v for k, v in (input_shapes or {}).items() if k in known}
    _, log = freeze_onnx(model, input_shapes=shapes, fold=True, path=path)
    done = {node: after for node, before, after in log.changes if before in ("If", "Loop")}
    found: dict[str, str | None] = {}
    for node in model.graph.node:
        if node.op_type not in ("If", "Loop") or node.domain not in _DEFAULT_DOMAINS:
            continue
        label = node_label(node)
        if label in done:
            text = ("inline the " + done[label]) if node.op_type == "If" else done[label].replace("unrolled", "unroll")
        elif log.fixes.get(label):
            then = "inlines the taken branch" if node.op_type == "If" else "unrolls it"
            text = f"{' '.join(log.fixes[label])} (then patch {then})"
        else:
            text = None
        for key in [node.name, *node.output, f"type:{node.op_type}"]:
            if key:
                # By type: OpenVINO may name a Loop after a later Identity; one answer for the type is safe.
                found[key] = text if found.get(key, text) == text else None
    return found
