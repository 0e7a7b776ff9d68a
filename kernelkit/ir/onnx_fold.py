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
- a Resize using attributes OpenVINO's conversion drops (keep_aspect_ratio_policy, antialias) is made
  explicit once its shapes are static (`kernelkit.ir.onnx_resize`);
- a Loop with a constant (or absent) trip count, whose exit condition depends only on the iteration
  number and constants, is unrolled: at most MAX_ITERATIONS iterations and MAX_UNROLLED_NODES new nodes.
  Final loop-carried values keep the Loop's output names; scan outputs are Unsqueeze + Concat on axis 0.

Shape inference runs again after every round, so what an inlined branch exposes folds in the next one.
An If or Loop left in the graph gets a refusal saying which inputs would make it foldable
(`kernelkit.ir.onnx_explain`). `foldable_options` and `describe_control_flow` are dry runs of the fold,
for the hints of inspect and patch.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.freeze import OPTION, frozen_record, typed_array, value_shape
from kernelkit.ir.onnx_explain import explain_leftovers
from kernelkit.ir.onnx_graph import (DEFAULT_DOMAINS, RANDOM_OPS, all_names, declared_dims, definitions, graph_attr,
                                     graph_attrs, has_control_flow, infer_shapes, load_onnx, node_label, numpy_type,
                                     outer_refs, real_inputs, rename_refs, set_static_shape)
from kernelkit.ir.onnx_resize import rewrite_resizes

MAX_ITERATIONS = 64
MAX_UNROLLED_NODES = 4096
MAX_FOLD_ELEMENTS = 1 << 20
SMALL_ELEMENTS = 64
MAX_ROUNDS = 32


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


def freeze_onnx(model, *, input_shapes=None, input_values=None, fold: bool = True, path=None):
    """A copy of ONNX `model` with `input_shapes` set on its inputs, `input_values` frozen into
    initializers and, with `fold`, what became constant folded. Returns (model, FoldLog)."""
    import onnx

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
            set_static_shape(inputs[name], dims)
    for name, raw in (input_values or {}).items():
        info = inputs[name]
        dtype, type_name = numpy_type(info.type.tensor_type.elem_type) if info.type.HasField("tensor_type") \
            else (None, "a non-tensor type")
        if dtype is None:
            raise KernelkitError(f"input {name!r} has element type {type_name}, which {OPTION} cannot freeze",
                                 path=path, where=f"{OPTION} {name}",
                                 hint="only numeric and boolean inputs can be frozen")
        dims = value_shape(name, declared_dims(info), len(raw), (input_shapes or {}).get(name), path)
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
        rewrite_resizes(result, log, path=path)        # now that the fold made sizes and shapes static
    return result, log


class _Folder:
    def __init__(self, model, log: FoldLog, frozen: set[str]):
        self.model = model
        self.graph = model.graph
        self.log = log
        self.opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 1)
        self.names = all_names(self.graph, set())
        self.defined, self.node_names = definitions(self.graph, Counter(), Counter())
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
            self.shapes = infer_shapes(self.model)
            self.changed = False
            self._round()
            any_change |= self.changed
            if not self.changed:
                break
        if any_change:
            self._remove_dead()
        explain_leftovers(self.graph, self.shapes, self.const, self.reasons, self.log)

    def _round(self) -> None:
        pending = deque(self.graph.node)
        kept = []
        outputs = {o.name for o in self.graph.output}
        while pending:
            node = pending.popleft()
            if node.domain not in DEFAULT_DOMAINS:
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
        if node.op_type in RANDOM_OPS or any(True for _ in graph_attrs(node)) or not node.input:
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
        branch = graph_attr(node, "then_branch" if taken else "else_branch")
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
        for sub in graph_attrs(copy):
            rename_refs(sub, mapping)
        return copy

    # ---- Loop -------------------------------------------------------------------------------------
    def _unroll(self, node):
        label = node_label(node)
        body = graph_attr(node, "body")
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
            for sub in graph_attrs(found):
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

    # ---- clean-up ---------------------------------------------------------------------------------
    def _remove_dead(self) -> None:
        needed = {o.name for o in self.graph.output}
        kept = []
        for node in reversed(self.graph.node):
            if any(o in needed for o in node.output if o):
                kept.append(node)
                needed.update(n for n in node.input if n)
                for sub in graph_attrs(node):
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


def _shape_value(node, dims) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(math.prod(dims), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[start:end] if "end" in attrs else dims[start:], np.int64)


def _dry_run(path, input_shapes):
    """(model, FoldLog) of folding the ONNX model at `path` with the shapes that name its inputs; None
    when it has no If or Loop."""
    model = load_onnx(path)
    if not has_control_flow(model):
        return None
    known = {i.name for i in real_inputs(model.graph)}
    shapes = {k: v for k, v in (input_shapes or {}).items() if k in known}
    return model, freeze_onnx(model, input_shapes=shapes, fold=True, path=path)[1]


def foldable_options(path, input_shapes=None) -> list[str]:
    """The options that would let patch fold more of the ONNX model's If/Loop (a dry run), for hints."""
    run = _dry_run(path, input_shapes)
    return run[1].options() if run else []


def describe_control_flow(path, input_shapes=None) -> dict[str, str | None]:
    """For inspect: what patch does about each top-level If/Loop of the ONNX model at `path` (a dry run of
    the fold), or the options that would let it fold; None when nothing can. Keys: node name, output
    names, and "type:If"/"type:Loop" when all nodes of the type get the same answer."""
    run = _dry_run(path, input_shapes)
    if run is None:
        return {}
    model, log = run
    done = {node: after for node, before, after in log.changes if before in ("If", "Loop")}
    found: dict[str, str | None] = {}
    for node in model.graph.node:
        if node.op_type not in ("If", "Loop") or node.domain not in DEFAULT_DOMAINS:
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
