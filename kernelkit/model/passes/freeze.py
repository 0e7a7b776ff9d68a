"""The freeze stage of `patch`: what `load_model(..., input_values, fold=True)` froze and folded, as report
entries; and, for `inspect`, what would make an If or Loop foldable.

The work happens while the model loads (`kernelkit.ir.onnx_fold` for ONNX, `kernelkit.ir.freeze` for an
IR Parameter): folding If and Loop must precede OpenVINO's conversion, which keeps them.
"""

from __future__ import annotations

from kernelkit.model.passes.base import PatchContext, Refusal

NAME = "freeze"
CONTROL_FLOW = ("If", "Loop")


def apply(ctx: PatchContext, log) -> list[dict]:
    """Record the log's frozen inputs, folds and refusals in `ctx`; returns the frozen inputs."""
    if log is None:
        return []
    for item in log.frozen:
        shape = "x".join(map(str, item["shape"])) or "scalar"
        value = item["value"] if len(item["value"]) <= 8 else item["value"][:8] + ["..."]
        ctx.record(NAME, item["input"], f"input {item['type']} {shape}", f"Const {value}")
    for node, before, after in log.changes:
        ctx.record(NAME, node, before, after)
    for node, op_type, reason in log.refusals:
        ctx.refusals.append(Refusal(NAME, node, op_type, reason))
    return list(log.frozen)


def describe_fix(layer, model) -> str | None:
    """For an If/Loop layer of a model converted from ONNX: the options that let patch fold it, or what
    patch already does about it. None for IR sources (kernelkit does not inline IR bodies)."""
    if getattr(model, "source_format", None) != "onnx" or model.path is None:
        return None
    fixes = getattr(model, "_control_flow_fixes", None)
    if fixes is None:
        from kernelkit.ir.onnx_fold import describe_control_flow

        shapes = {p.name: list(p.outputs[0].dims) for p in model.parameters()
                  if p.outputs and all(d >= 0 for d in p.outputs[0].dims)}
        fixes = describe_control_flow(model.path, shapes)
        model._control_flow_fixes = fixes
    for key in [layer.name, *(name for port in layer.outputs for name in port.names), f"type:{layer.type}"]:
        if key in fixes:
            return fixes[key]
    return None
