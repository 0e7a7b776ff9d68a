"""Rewrite pass: replace each layer of an op MYRIAD cannot compile by its formulation
(kernelkit.model.formulations: exact compositions and native formulations, the latter measured in
kernelkit/facts/data/native-fp16.json); kernelkit.model.passes.native decides when one is used instead of a
library kernel. A formulation that refuses a layer leaves no layer behind.
"""

from __future__ import annotations

from kernelkit.ir.graph import prune_dead, replace, unused
from kernelkit.model.formulations.registry import formulations
from kernelkit.model.passes.base import PatchContext, Refuse, describe

NAME = "rewrite"


def needed_layers(model) -> set[str]:
    """Layers of ops the knowledge base calls supported but whose form here the real plugin refuses."""
    return {layer.name for layer in model.layers
            if (entry := formulations().get(layer.type.lower())) and entry.needed and entry.needed(model, layer)}


def describe_fix(layer) -> str | None:
    entry = formulations().get(layer.type.lower())
    return None if entry is None else f"rewrite as {entry.text}"


def rewrite_layer(ctx: PatchContext, layer) -> bool:
    """Replace one layer if a rewrite exists and applies; record the change or the refusal. A refusal
    part-way through a build leaves no layer behind."""
    entry = formulations().get(layer.type.lower())
    if entry is None:
        return False
    before = describe(layer)
    name = layer.name
    existing = {l.id for l in ctx.model.layers}
    try:
        if not entry.multi_output and any(not unused(ctx.model, layer, i) for i in range(1, len(layer.outputs))):
            raise Refuse("layer has more than one output in use")
        value = entry.build(ctx.model, layer)
    except Refuse as why:
        prune_dead(ctx.model, [l for l in ctx.model.layers if l.id not in existing])
        ctx.refuse(NAME, layer, str(why))
        return False
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        # A layer whose attributes or inputs are not what its op defines (a missing hidden_size, a number
        # that is not one, too few inputs): refused with what was wrong, not a traceback.
        prune_dead(ctx.model, [l for l in ctx.model.layers if l.id not in existing])
        ctx.refuse(NAME, layer, f"the layer's attributes or inputs do not fit {layer.type}: "
                                f"{type(exc).__name__} {exc}")
        return False
    if isinstance(value, list):
        replace_outputs(ctx.model, layer, value)
        # Layers built for an output nothing reads (and dropped from `value`) feed nothing: remove them.
        prune_dead(ctx.model, [l for l in ctx.model.layers if l.id not in existing])
    else:
        replace(ctx.model, layer, value)
    ctx.record(NAME, name, before, entry.text)
    return True


def replace_outputs(model, old_layer, values: list) -> None:
    """`replace` for a layer with several outputs: output i's consumers read values[i]. One value's layer
    takes the old name: the one whose tensor is already called after the layer (else output 0), so no layer
    name collides with a tensor name; the others keep their own."""
    from kernelkit.ir.graph import copy_tensor_names, move_consumers, out, remove_with_dead_inputs, take_over_name

    heir = next(v for v in values if v is not None)
    for index, value in enumerate(values):
        if value is None:            # an output nothing reads, not computed
            continue
        old = out(old_layer, index)
        if old_layer.name in (old.port.names or []):
            heir = value             # the output already called after the layer keeps that name on its layer
        move_consumers(model, old, value)
        copy_tensor_names(old, value)
    take_over_name(model, old_layer, heir.layer)
    remove_with_dead_inputs(model, old_layer)


def apply(ctx: PatchContext, blocked: set[str] | None = None) -> None:
    """Rewrite every layer of a rewritable type (only those in `blocked`, when given)."""
    for layer in list(ctx.model.topological_order()):
        if blocked is not None and layer.name not in blocked:
            continue
        if layer.type.lower() in formulations():
            rewrite_layer(ctx, layer)
