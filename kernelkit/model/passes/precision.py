"""Precision patcher: insert Convert layers where a MYRIAD stage rejects the type its producer gives it.

MYRIAD turns I64/U64/U32/BOOL tensors into S32 and computes float tensors as FP16; most stages take FP16
only ("Stage node X (Greater) types check error: input #0 has type S32, but one of [FP16] is expected",
openvino#16105, the DepthAI conversion guide), and only six Convert pairs exist. The rules are the
knowledge base's (kernelkit/facts/data/precision.toml); this module applies them:
  - an input of a type the op's rule rejects gets a Convert to one it accepts (a Const is retyped in place);
  - when the op's output followed that input's type, a Convert after the op restores it, and takes over the
    op's name if the op fed a Result (legacy output names, notes §1.4);
  - a Convert pair MYRIAD lacks is routed through one that exists (FP16 -> U8 via S32, U8 -> S32 via FP16).
"""

from __future__ import annotations

import numpy as np

from kernelkit.facts.op_kinds import COMPARISON_OPS
from kernelkit.facts.knowledge import load_knowledge
from kernelkit.facts.target import Target
from kernelkit.model.passes.base import PatchContext, describe
from kernelkit.ir.graph import (add_const, add_op, copy_tensor_names, input_of, move_consumers, out, prune_dead,
                                replace, take_over_name)

NAME = "precision"
FP16_EXACT_INT = 2048          # every integer of magnitude <= 2048 is exact in fp16
ELEMENT_FOR = {"S32": "i32", "U8": "u8"}   # FP16 is f32 or f16, chosen per layer


def _float_type_for(model, layer) -> str:
    """f16 when a float input of the layer is already f16, else f32 (MYRIAD computes both as FP16)."""
    return "f16" if any(t == "f16" for _, t in model.iter_input_types(layer)) else "f32"


def _bad_inputs(kb, model, layer) -> tuple[list[int], str | None]:
    """Input indexes whose effective type a precision rule of the op rejects, and the type to give them."""
    rules = kb.precision_rules.get(kb.canonical(layer.type), ())
    bad, accepted = [], None
    for index, (_, etype) in enumerate(model.iter_input_types(layer)):
        for rule in rules:
            if rule.ports is not None and index not in rule.ports:
                continue
            eff = kb.effective_type(etype)
            if eff is not None and eff not in rule.accepts:
                bad.append(index)
                # Integers stay integers where the stage takes S32 (exact); otherwise they become floats.
                if eff == "U8" and "S32" in rule.accepts:
                    choice = "S32"
                else:
                    choice = "FP16" if "FP16" in rule.accepts else sorted(rule.accepts)[0]
                accepted = accepted or choice
    return sorted(set(bad)), accepted


def _retype_input(ctx: PatchContext, layer, index: int, element_type: str) -> str:
    model = ctx.model
    value = input_of(model, layer, index)
    port = layer.inputs[index]
    edge = model.input_edge(layer, port.id)
    if value.layer.type.lower() == "const":
        data = model.const_value(value.layer)
        converted = data.astype({"f16": np.float16, "f32": np.float32, "i32": np.int32, "u8": np.uint8}[element_type])
        new = add_const(model, converted, f"{value.layer.name}/{element_type}")
        lossy = (not np.array_equal(np.asarray(data, np.float64), np.asarray(converted, np.float64))
                 or (element_type in ("f16", "f32") and np.abs(data).max(initial=0) > FP16_EXACT_INT))
        note = f"const input {index} as {element_type}" + (" (values beyond fp16's exact integers)" if lossy else "")
        source = new
    else:
        convert = add_op(model, "Convert", "opset1", f"{layer.name}/input{index}_{element_type}", [value],
                         {"destination_type": element_type})
        source = out(convert)
        note = f"Convert input {index} {value.port.element_type}->{element_type}"
    model.disconnect(edge)
    model.connect(source.layer, source.port.id, layer, port.id)
    port.precision = source.precision
    prune_dead(model, [value.layer])        # a retyped constant nothing else reads
    return note


def _de_morgan(ctx: PatchContext, layer) -> bool:
    """a or b = not(not a and not b); a xor b = (a or b) and not(a and b)."""
    from kernelkit.ir.graph import op

    model = ctx.model
    a, b = input_of(model, layer, 0), input_of(model, layer, 1)
    name, before = layer.name, describe(layer)
    broadcast = {"auto_broadcast": layer.attrs.get("auto_broadcast", "numpy")}
    not_a = op(model, "LogicalNot", f"{name}/not_a", [a])
    not_b = op(model, "LogicalNot", f"{name}/not_b", [b])
    either = op(model, "LogicalNot", f"{name}/or", [op(model, "LogicalAnd", f"{name}/neither", [not_a, not_b], broadcast)])
    result = either
    if layer.type == "LogicalXor":
        both = op(model, "LogicalAnd", f"{name}/both", [a, b], broadcast)
        result = op(model, "LogicalAnd", f"{name}/xor", [either, op(model, "LogicalNot", f"{name}/not_both", [both])],
                    broadcast)
    replace(model, layer, result)
    ctx.record(NAME, name, before, "LogicalAnd/LogicalNot form (De Morgan), which MYRIAD runs on S32")
    return True


# Comparisons whose MYRIAD stage refuses its own boolean (S32) output: only Greater, Less and Equal pass
# (notes §2.3 and openvino#7135; the real 2021.4 plugin: "Stage node … (Not_equal) types check error:
# output #0 has type S32, but one of [FP16] is expected").
_OUTPUT_REFUSED = {"NotEqual": None, "GreaterEqual": "Greater", "LessEqual": "Less"}


def fix_comparison_output(ctx: PatchContext, layer, kb) -> bool:
    """NotEqual = Not(Equal); GreaterEqual = Not(Not(Greater) And Not(Equal)) (exact with NaN too)."""
    from kernelkit.ir.graph import op

    strict = _OUTPUT_REFUSED[kb.canonical(layer.type)]
    model = ctx.model
    a, b = input_of(model, layer, 0), input_of(model, layer, 1)
    name, before = layer.name, describe(layer)
    broadcast = {"auto_broadcast": layer.attrs.get("auto_broadcast", "numpy")}
    equal = op(model, "Equal", f"{name}/equal", [a, b], broadcast)
    if strict is None:
        result = op(model, "LogicalNot", f"{name}/not_equal", [equal])
        form = "LogicalNot(Equal)"
    else:
        ordered = op(model, "Greater" if strict == "Greater" else "Less", f"{name}/strict", [a, b], broadcast)
        neither = op(model, "LogicalAnd", f"{name}/neither",
                     [op(model, "LogicalNot", f"{name}/not_strict", [ordered]),
                      op(model, "LogicalNot", f"{name}/not_equal", [equal])], broadcast)
        result = op(model, "LogicalNot", f"{name}/either", [neither])
        form = f"LogicalNot(LogicalNot({strict}) And LogicalNot(Equal))"
    replace(model, layer, result)
    ctx.record(NAME, name, before, f"{form}: MYRIAD refuses this comparison's boolean output")
    return True


def fix_inputs(ctx: PatchContext, layer, kb) -> bool:
    model = ctx.model
    bad, accepted = _bad_inputs(kb, model, layer)
    if not bad:
        return False
    if kb.canonical(layer.type) in _BOOLEAN_OPS:
        return _de_morgan(ctx, layer)
    before_types = [t for _, t in model.iter_input_types(layer)]
    element_type = _float_type_for(model, layer) if accepted == "FP16" else ELEMENT_FOR[accepted]
    # OpenVINO wants matching types on the inputs of an element-wise op: retype every input that had the
    # type of a rejected one.
    rejected_types = {before_types[i] for i in bad}
    indexes = [i for i, t in enumerate(before_types)
               if i in bad or (t in rejected_types and kb.canonical(layer.type) in _SAME_TYPE_OPS)]
    notes = [_retype_input(ctx, layer, i, element_type) for i in indexes]
    restored = _restore_output_type(ctx, layer, before_types[indexes[0]], element_type)
    if restored:
        notes.append(restored)
    if accepted == "FP16" and any(t not in ("f32", "f16") for t in rejected_types):
        notes.append(f"integers are exact on the device up to {FP16_EXACT_INT} in magnitude")
    ctx.record(NAME, layer.name, f"{describe(layer)} on {','.join(t or '?' for t in before_types)}", "; ".join(notes))
    return True


# Ops whose inputs must all share one element type in OpenVINO.
_SAME_TYPE_OPS = {"Add", "Subtract", "Multiply", "Divide", "Maximum", "Minimum", "Power", "SquaredDifference",
                  "FloorMod", "Mod", *COMPARISON_OPS,
                  "Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData",
                  "MatMul", "PRelu"}
# Boolean ops OpenVINO defines on booleans only: rewritten with LogicalAnd/LogicalNot, which MYRIAD runs on
# S32 (De Morgan), instead of converted.
_BOOLEAN_OPS = {"LogicalOr", "LogicalXor"}


def _restore_output_type(ctx: PatchContext, layer, old_type: str | None, new_type: str) -> str | None:
    """If the op's output had the retyped input's type, set it to the new one and convert back after it."""
    model = ctx.model
    if not layer.outputs or layer.outputs[0].element_type != old_type or old_type is None:
        return None
    layer.outputs[0].precision = new_type
    for consumer, port in model.consumers(layer, layer.outputs[0].id):
        port.precision = new_type
    if not model.consumers(layer, layer.outputs[0].id):
        return None
    back = add_op(model, "Convert", "opset1", f"{layer.name}/as_{old_type}", [out(layer)],
                  {"destination_type": old_type})
    move_consumers(model, out(layer), out(back), skip=[back])
    copy_tensor_names(out(layer), out(back))
    # A single-output op feeding a Result hands its legacy output name to the Convert. A multi-output op
    # keeps it: its outputs are named "<op>.<port>", and the op name must not collide with a tensor name.
    if len(layer.outputs) == 1 and any(c.type == "Result" for c, _ in model.consumers(back, back.outputs[0].id)):
        take_over_name(model, layer, back)
        layer.name = model.unique_name(f"{back.name}/{new_type}")
    return f"Convert output back to {old_type}"


def fix_convert(ctx: PatchContext, layer, kb) -> bool:
    model = ctx.model
    source = next(iter(model.iter_input_types(layer)))[1]
    target = layer.attrs.get("destination_type")
    pair = (kb.effective_type(source), kb.effective_type(target))
    if None in pair or pair[0] == pair[1] or pair in kb.convert_pairs:
        return False
    via = next((mid for mid in ("S32", "FP16") if (pair[0], mid) in kb.convert_pairs
                and (mid, pair[1]) in kb.convert_pairs), None)
    if via is None:
        ctx.refuse(NAME, layer, f"MYRIAD has no Convert {pair[0]}->{pair[1]} and no two-step route")
        return False
    via_type = {"S32": "i32", "FP16": "f32"}[via]
    value = input_of(model, layer, 0)
    first = add_op(model, "Convert", "opset1", f"{layer.name}/via_{via_type}", [value], {"destination_type": via_type})
    second = add_op(model, "Convert", "opset1", f"{layer.name}/to_{target}", [out(first)],
                    {"destination_type": target})
    name = layer.name
    replace(model, layer, out(second))
    note = " (exact for values in the destination's range)" if via == "S32" else ""
    ctx.record(NAME, name, f"Convert {source}->{target}", f"Convert {source}->{via_type}->{target}{note}")
    return True


# Element types with no MYRIAD representation, and the nearest type it has: exact for the integers, a
# rounding for f64/bf16 (MYRIAD computes in fp16 anyway).
RETYPE = {"f64": "f32", "bf16": "f32", "i8": "i32", "i16": "i32", "u16": "i32"}
_TYPE_ATTRS = ("element_type", "destination_type", "output_type", "index_element_type")


def retype_unsupported(ctx: PatchContext) -> None:
    """Give every tensor of an element type MYRIAD lacks the nearest one it has (f64 -> f32, i16 -> i32...)."""
    model = ctx.model
    for layer in list(model.layers):
        if layer.type.lower() == "const" and layer.attrs.get("element_type") in RETYPE:
            old_type = layer.attrs["element_type"]
            data = model.const_value(layer)
            name = layer.name
            new = add_const(model, data.astype(np.float32 if RETYPE[old_type] == "f32" else np.int32),
                            f"{name}/{RETYPE[old_type]}")
            replace(model, layer, new)
            ctx.record(NAME, name, f"Const {old_type}", f"Const {RETYPE[old_type]}")
            continue
        changed = []
        for key in _TYPE_ATTRS:
            value = layer.attrs.get(key)
            if value in RETYPE:
                layer.attrs[key] = RETYPE[value]
                changed.append(f"{key} {value}->{RETYPE[value]}")
        for port in layer.inputs + layer.outputs:
            if port.element_type in RETYPE:
                port.precision = RETYPE[port.element_type]
        if changed:
            ctx.record(NAME, layer.name, describe(layer), "; ".join(changed))


def describe_fix(model, layer, target: Target) -> str | None:
    kb = load_knowledge(target.name)
    if layer.type.lower() == "convert":
        return "route the Convert through a pair MYRIAD has"
    bad, accepted = _bad_inputs(kb, model, layer)
    if bad:
        return f"insert Convert to {'float' if accepted == 'FP16' else accepted} before input(s) {bad}"
    return None


def apply(ctx: PatchContext) -> None:
    kb = load_knowledge(ctx.target.name)
    retype_unsupported(ctx)
    for layer in list(ctx.model.topological_order()):
        if kb.canonical(layer.type) == "Convert":
            fix_convert(ctx, layer, kb)
        else:
            fix_inputs(ctx, layer, kb)
    for layer in list(ctx.model.topological_order()):      # the Converts back that fix_inputs added
        if kb.canonical(layer.type) == "Convert":
            fix_convert(ctx, layer, kb)
        elif kb.canonical(layer.type) in _OUTPUT_REFUSED:
            fix_comparison_output(ctx, layer, kb)
