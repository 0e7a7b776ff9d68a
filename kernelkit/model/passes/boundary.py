"""Boundary patcher: what the MYRIAD 2021.4 plugin needs at the network's edges, found by compiling.

- A boolean network output must come from a comparison. The plugin gives network outputs FP16 storage,
  and its logical stages (Logical_NOT/AND, a Select of booleans) only write S32: "Stage node y
  (Logical_NOT) types check error: output #0 has type FP16, but one of [S32] is expected". The same
  stage compiles when a Convert follows it, so the boolean is re-made by `Convert(b, f16) > 0.5` (exact).
- An unsigned 64/32-bit network output is stored as FP16 by the plugin, which no S32 stage writes
  ("Stage node y (Sum) types check error: output #0 has type FP16, but one of [S32] is expected"); as
  I64 it is stored S32. A Convert to i64 ends such an output (the values are S32 on the VPU anyway).
- A network must read an input ("AssertionFailed: !out.networkInputs.empty()"): when constant folding
  left every output constant (Shape, Size, EyeLike of an input), the first output becomes
  `constant + Convert(x0 > x0)` with x0 one element of the first input: always 0, NaN included. A constant
  boolean output is tied to the input so too: folded, it is an I32 constant the plugin cannot store
  ("Unsupported precision I32"; a constant f32 or i32 output compiles).
- A network whose inputs are all 4-D/5-D with one first dimension N > 1 is compiled at batch 1: it re-infers
  every shape with N = 1, and a Reshape to a constant shape that spells out N fails ("Requested output
  shape {2,9,6,8} is incompatible with input shape {1,3,3,6,8}"). A Reshape that keeps the first
  dimension gets it as 0 with special_zero (copy the input's), one whose first dimension still holds the
  batch outermost ([2,3,4,5] -> [24,5] and back) gets it as -1: both mean the same thing at any batch. A
  Reshape that moves the batch elsewhere ([2,3,4,5] -> [1,120], ONNX LayerNormalization over axis 0 written
  out) has no meaning one sample at a time: the network is compiled at its batch as written
  (MYRIAD_DETECT_NETWORK_BATCH NO), unless custom layers are bound (the plugin splits those per sample anyway).
All only for 2021.4, where the real plugin said so; each edit is recorded.
"""

from __future__ import annotations

import numpy as np

from kernelkit.facts.op_kinds import COMPARISON_KINDS
from kernelkit.model.passes.base import PatchContext, describe
from kernelkit.ir.graph import (FLOAT_PRECISIONS, Out, add_const, copy_tensor_names, input_of, move_consumers, op,
                                prune_dead, take_over_name)

NAME = "boundary"
def _feeds_result(model, value: Out) -> list:
    return [layer for layer, _ in model.consumers(value.layer, value.port.id) if layer.type == "Result"]


def fix_boolean_outputs(ctx: PatchContext) -> None:
    model = ctx.model
    for result in model.results():
        value = input_of(model, result, 0)
        producer = value.layer
        if value.precision != "BOOL" or producer.type.lower() in COMPARISON_KINDS or producer.type == "Parameter":
            continue
        name = producer.name
        as_half = op(model, "Convert", f"{name}/as_f16", [value], {"destination_type": "f16"})
        half = add_const(model, np.array(0.5, np.float16), f"{name}/half")
        remade = op(model, "Greater", f"{name}/bool", [as_half, half], {"auto_broadcast": "numpy"})
        move_consumers(model, value, remade, skip=[as_half.layer])
        copy_tensor_names(value, remade)
        take_over_name(model, producer, remade.layer)
        ctx.record(NAME, name, describe(producer), "boolean network output re-made by Convert(f16) > 0.5")


def fix_unsigned_outputs(ctx: PatchContext) -> None:
    model = ctx.model
    for result in model.results():
        value = input_of(model, result, 0)
        if value.precision not in ("U64", "U32") or value.layer.type == "Parameter":
            continue
        name = value.layer.name
        signed = op(model, "Convert", f"{name}/as_i64", [value], {"destination_type": "i64"})
        move_consumers(model, value, signed, skip=[signed.layer])
        copy_tensor_names(value, signed)
        take_over_name(model, value.layer, signed.layer)
        ctx.record(NAME, name, describe(value.layer), f"{value.precision} network output as I64 (the plugin stores "
                                                      "an unsigned one as FP16)")


def _depends_on_input(model, results=None) -> bool:
    seen, pending = set(), list(model.results() if results is None else results)
    while pending:
        layer = pending.pop()
        if layer.id in seen:
            continue
        seen.add(layer.id)
        if layer.type == "Parameter":
            return True
        pending.extend(found[0] for port in layer.inputs if (found := model.producer(layer, port.id)))
    return False


def anchor_constant_network(ctx: PatchContext) -> None:
    model = ctx.model
    params, results = model.parameters(), model.results()
    if not params or not results:
        return
    if not _depends_on_input(model):
        _anchor(ctx, params[0], results[0], "a network must read an input")
    # A constant boolean output the plugin folds to an I32 constant it cannot store: "Unsupported precision I32"
    # (the real 2021.4 plugin on test_dropout_default_mask; a constant f32 or i32 output compiles)
    for result in model.results():
        if input_of(model, result, 0).precision == "BOOL" and not _depends_on_input(model, [result]):
            _anchor(ctx, params[0], result, "the plugin cannot store a constant boolean output")


def _anchor(ctx: PatchContext, param, result, why: str) -> None:
    """The result's constant value + 0 computed from one element of `param`, which the plugin cannot fold."""
    model = ctx.model
    value = original = input_of(model, result, 0)
    x = Out(param, param.outputs[0])
    name = value.layer.name
    rank = len(x.dims)
    if rank:
        ints = lambda v, tag: add_const(model, np.array(v, np.int64), f"{name}/{tag}")  # noqa: E731
        zeros = ",".join(["0"] * rank)         # every begin and end used, spelled out per axis
        x = op(model, "StridedSlice", f"{name}/one_input", [x, ints([0] * rank, "begin"), ints([1] * rank, "end"),
                                                            ints([1] * rank, "strides")],
               {"begin_mask": zeros, "end_mask": zeros, "new_axis_mask": "", "shrink_axis_mask": "",
                "ellipsis_mask": ""},
               outputs=[(x.precision, [1] * rank)])
    if x.precision not in FLOAT_PRECISIONS:
        x = op(model, "Convert", f"{name}/input_f16", [x], {"destination_type": "f16"})
    flat = op(model, "Reshape", f"{name}/flat", [x, add_const(model, np.array([1], np.int64), f"{name}/one_shape")],
              {"special_zero": "false"}, outputs=[(x.precision, [1])])
    never = op(model, "Greater", f"{name}/never", [flat, flat], {"auto_broadcast": "numpy"})
    boolean = value.precision == "BOOL"
    zero = op(model, "Convert", f"{name}/zero", [never], {"destination_type": "f16" if boolean else
                                                          value.port.element_type})
    rank_out = len(value.dims)
    scalar = rank_out == 0 and value.layer.type.lower() == "const"
    if scalar:     # the plugin refuses a rank-0 Const here: add on [1], then squeeze
        value = add_const(model, np.asarray(model.const_value(value.layer)).reshape(1), f"{name}/as_1d")
    elif rank_out > 1:
        zero = op(model, "Reshape", f"{name}/ones", [zero, add_const(model, np.array([1] * rank_out, np.int64),
                                                                      f"{name}/ones_shape")],
                  {"special_zero": "false"}, outputs=[(zero.precision, [1] * rank_out)])
    if boolean:
        as_half = op(model, "Convert", f"{name}/as_f16", [value], {"destination_type": "f16"})
        total = op(model, "Add", f"{name}/sum", [as_half, zero], {"auto_broadcast": "numpy"})
        anchored = op(model, "Greater", f"{name}/anchored",
                      [total, add_const(model, np.array(0.5, np.float16), f"{name}/half")], {"auto_broadcast": "numpy"})
    else:
        anchored = op(model, "Add", f"{name}/anchored", [value, zero], {"auto_broadcast": "numpy"})
    if scalar:     # Squeeze, not ReduceSum: the plugin folds the latter into a Const it then refuses
        anchored = op(model, "Squeeze", f"{name}/scalar", [anchored, add_const(model, np.array([0], np.int64),
                                                                               f"{name}/axis")],
                      outputs=[(anchored.precision, [])])
    model.disconnect(model.input_edge(result, result.inputs[0].id))
    model.connect(anchored.layer, anchored.port.id, result, result.inputs[0].id)
    copy_tensor_names(original, anchored)
    take_over_name(model, original.layer, anchored.layer)
    prune_dead(model, [original.layer])
    ctx.record(NAME, name, describe(original.layer), f"output tied to input {param.name!r} (+ 0): {why}")


def network_batch(model) -> int | None:
    """The batch the plugin takes off the network (kernelkit.kernel.bindings.myriad_select.network_batch)."""
    from kernelkit.kernel.bindings.myriad_select import network_batch as batch_taken_off

    return batch_taken_off([p.outputs[0].dims for p in model.parameters()])


# The plugin's option that keeps a network at its batch (the frontend's detectNetworkBatch step skipped).
KEEP_BATCH = ("MYRIAD_DETECT_NETWORK_BATCH", "NO")


def _per_sample_target(shape, special: bool, source_dims, out_dims, batch: int):
    """The Reshape target that means at batch 1 what `shape` means at `batch`; `shape` itself when it already
    does; None when no target does (the batch leaves the first dimension). out_dims: the Reshape's output."""
    shape = [int(d) for d in shape]
    first = shape[0]
    if (special and first == 0) or first == -1 or source_dims[0] % batch or len(out_dims) != len(shape):
        return shape                                    # copies the batch, or the input holds none up front
    if out_dims[0] == source_dims[0] and (special or 0 not in shape):
        return [0] + shape[1:]                          # keeps the first dimension: copy it (special_zero)
    if out_dims[0] % batch == 0 and 0 not in out_dims:
        return [-1] + [int(d) for d in out_dims[1:]]    # the batch stays outermost in a merged first dimension
    return None


def batch_agnostic_reshapes(ctx: PatchContext) -> None:
    from kernelkit.ir.graph import const_value

    model = ctx.model
    batch = network_batch(model)
    if batch is None:
        return
    edits, moved = [], []
    for layer in list(model.layers):
        if layer.type != "Reshape" or len(layer.inputs) < 2:
            continue
        source, target = input_of(model, layer, 0), input_of(model, layer, 1)
        shape = const_value(model, target)
        if shape is None or np.ndim(shape) != 1 or not len(shape) or not source.dims:
            continue
        special = layer.attrs.get("special_zero", "false").lower() == "true"
        out_dims = layer.outputs[0].dims
        if any(d < 0 for d in out_dims):
            continue
        fixed = _per_sample_target(shape, special, source.dims, out_dims, batch)
        if fixed is None:
            moved.append((layer, f"{list(source.dims)} -> {list(out_dims)}"))
        elif fixed != [int(d) for d in shape]:
            edits.append((layer, target, shape, fixed))
    if moved:
        bound = getattr(getattr(ctx, "binder", None), "bindings", None)
        layer, change = moved[0]
        if bound:       # at its batch the plugin splits a custom stage per sample with the whole tensor's sizes
            ctx.refuse(NAME, layer, f"{change} moves the batch {batch} out of the first dimension, and the network "
                                    "binds custom layers, which the plugin runs one sample at a time: the network "
                                    "cannot be compiled at its batch")
            return
        ctx.compile_options[KEEP_BATCH[0]] = KEEP_BATCH[1]
        ctx.record(NAME, layer.name, describe(layer),
                   f"{change} moves the batch {batch} out of the first dimension, which means something else one "
                   f"sample at a time: the network is compiled at its batch as written ({' '.join(KEEP_BATCH)} in "
                   "compile.conf)")
        return          # compiled as written, every other target keeps its meaning: nothing more to change
    for layer, target, shape, fixed in edits:
        new = add_const(model, np.asarray(fixed).astype(np.asarray(shape).dtype), f"{layer.name}/batch_agnostic_shape")
        model.disconnect(model.input_edge(layer, layer.inputs[1].id))
        model.connect(new.layer, new.port.id, layer, layer.inputs[1].id)
        if fixed[0] == 0:
            layer.attrs["special_zero"] = "true"
        prune_dead(model, [target.layer])
        how = "0 (special_zero)" if fixed[0] == 0 else "-1"
        ctx.record(NAME, layer.name, describe(layer), f"target shape's first dimension {int(shape[0])} as {how}: the "
                                                      f"plugin compiles the network one sample of its batch {batch} "
                                                      "at a time")


def apply(ctx: PatchContext) -> None:
    anchor_constant_network(ctx)
    fix_boolean_outputs(ctx)
    fix_unsigned_outputs(ctx)
    batch_agnostic_reshapes(ctx)
