"""Why an If or Loop the fold left cannot fold, and which options would let it: `--input-value NAME=...` for an
input whose value it needs, `--input-shape NAME=...` for one whose shape it needs, nothing when it never can
(a random op, a data-dependent shape, a Loop exit that reads a loop-carried value).

The fold (`kernelkit.ir.onnx_fold`) turns these into the refusals of its FoldLog; inspect and the hints of
`patch` show them to the user.
"""

from __future__ import annotations

from kernelkit.ir.onnx_graph import (DEFAULT_DOMAINS, RANDOM_OPS, graph_attr, graph_attrs, node_label, outer_refs,
                                     real_inputs)

_DATA_DEPENDENT_SHAPE = {"NonZero", "Unique", "NonMaxSuppression", "Compress", "StringSplit"}
# Ops whose output shape follows the *values* of the inputs after the first (the data input).
_SHAPE_FROM_VALUES = {"Reshape", "Expand", "Tile", "Slice", "Pad", "Resize", "Upsample", "TopK", "OneHot",
                      "Squeeze", "Unsqueeze", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "Split",
                      "CenterCropPad", "Col2Im"}
_SHAPE_ONLY_VALUES = {"Range", "ConstantOfShape"}      # every input's value sets the output shape


def explain_leftovers(graph, shapes, const, loop_reasons: dict[str, str], log) -> None:
    """Give each If/Loop left in `graph` a refusal in `log` (a FoldLog) saying why and, when some would, the
    options that fold it (also in `log.fixes`). loop_reasons: label -> why the fold did not unroll that Loop."""
    explain = Explainer(graph, shapes, const)
    for node in graph.node:
        if node.op_type not in ("If", "Loop") or node.domain not in DEFAULT_DOMAINS:
            continue
        label = node_label(node)
        reason = loop_reasons.get(label) if node.op_type == "Loop" else None
        fix = explain.fix(node) if reason is None or "run time" in reason else []
        text = reason or explain.why(node)
        if fix:
            log.fixes[label] = fix
            text += f"; fold it with {' '.join(fix)}"
        log.refusals.append((label, node.op_type, text))


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
            elif not shape and op in RANDOM_OPS:
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
                for sub in graph_attrs(node):
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
            body = graph_attr(node, "body")
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
        for sub in graph_attrs(node):
            stack.extend(outer_refs(sub))
    return refs


def _data_dependent_exit(node) -> str | None:
    """The loop-carried value a Loop's exit condition reads, if any."""
    body = graph_attr(node, "body")
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
            for sub in graph_attrs(found):
                stack.extend(outer_refs(sub))
    return None

